//! Downloads a package (function code, layer content) from the presigned
//! URL Lambda hands out. The URL is valid for about ten minutes and carries
//! a signature, so it is treated as a credential: it is never logged,
//! audited or put in an error message, only its host.
//!
//! The bytes are streamed to a temporary file while they are hashed, so a
//! 250 MB package costs a file, not memory; the upload then reads the file.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::AsyncWriteExt;

/// Lambda's deployment package limit is 250 MB unzipped; a zip larger than
/// this is not a package.
pub const MAX_PACKAGE_BYTES: u64 = 300 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Error)]
pub enum DownloadError {
    /// 403 from the presigned URL: expired (or revoked); fetch a new one.
    #[error(
        "the presigned URL at {host} was refused (HTTP {status}): it has expired or was revoked"
    )]
    Expired { host: String, status: u16 },
    #[error("downloading from {host} failed: HTTP {status}")]
    Status { host: String, status: u16 },
    #[error("downloading from {host} failed: {detail}")]
    Transport { host: String, detail: String },
    #[error("the package at {host} is larger than {limit} bytes")]
    TooLarge { host: String, limit: u64 },
    #[error("writing the downloaded package to {path} failed: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What was downloaded: its size and SHA-256 (hex and base64, the form
/// Lambda's `CodeSha256` uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub sha256_hex: String,
    pub sha256_b64: String,
}

/// The scheme and host of a URL, the only part safe to show.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host.rsplit('@').next().unwrap_or_default().to_string()
}

/// Streams `url` into `dest` (created or truncated), hashing as it goes.
pub async fn fetch_to_file(url: &str, dest: &Path) -> Result<Fetched, DownloadError> {
    let host = host_of(url);
    let transport = |detail: String| DownloadError::Transport {
        host: host.clone(),
        detail,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| transport("the URL Lambda returned is not a valid URI".into()))?;
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| transport(format!("no usable TLS root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(tls);
    let req = http::Request::get(uri)
        .body(Empty::new())
        .map_err(|e| transport(e.to_string()))?;
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        if status == 403 {
            return Err(DownloadError::Expired {
                host: host.clone(),
                status,
            });
        }
        if !(200..300).contains(&status) {
            return Err(DownloadError::Status {
                host: host.clone(),
                status,
            });
        }
        let io = |source| DownloadError::Io {
            path: dest.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport(format!("the body broke off: {e}")))?;
            if let Ok(chunk) = frame.into_data() {
                size += chunk.len() as u64;
                if size > MAX_PACKAGE_BYTES {
                    return Err(DownloadError::TooLarge {
                        host: host.clone(),
                        limit: MAX_PACKAGE_BYTES,
                    });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io)?;
            }
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        let digest = hasher.finalize();
        Ok(Fetched {
            size,
            sha256_hex: hex::encode(digest),
            sha256_b64: base64::engine::general_purpose::STANDARD.encode(digest),
        })
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| transport(format!("no answer within {}s", TIMEOUT.as_secs())))?
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A one-connection-per-answer HTTP server answering each request with
    /// the next canned response.
    async fn serve(answers: Vec<(u16, &'static [u8])>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for (status, body) in answers {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body).await;
                let _ = sock.shutdown().await;
            }
        });
        format!("http://{addr}/bucket/pkg?X-Amz-Signature=SECRETSIG&Expires=1")
    }

    #[tokio::test]
    async fn streams_to_a_file_and_hashes() {
        let url = serve(vec![(200, b"hello")]).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("p.zip");
        let got = fetch_to_file(&url, &dest).await.unwrap();
        assert_eq!(got.size, 5);
        assert_eq!(
            got.sha256_hex,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
    }

    #[tokio::test]
    async fn an_expired_url_is_told_apart_and_never_shown() {
        let url = serve(vec![(
            403,
            b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        )])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_to_file(&url, &dir.path().join("p.zip"))
            .await
            .unwrap_err();
        assert!(matches!(err, DownloadError::Expired { status: 403, .. }));
        let shown = err.to_string();
        assert!(!shown.contains("SECRETSIG"), "{shown}");
        assert!(shown.contains("127.0.0.1"), "{shown}");
    }

    #[test]
    fn only_the_host_of_a_url_is_shown() {
        assert_eq!(
            host_of("https://awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com/snap/x?X-Amz-Signature=abc"),
            "awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com"
        );
        assert_eq!(host_of("http://user:pw@127.0.0.1:4566/a"), "127.0.0.1:4566");
    }
}
