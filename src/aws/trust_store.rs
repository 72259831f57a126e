//! The system's TLS trust store, loaded ahead of the first connection.
//!
//! The SDK's HTTPS client reads every root certificate of the system the
//! first time it builds a connector (once per process), which is on the
//! path from the first request to its answer: the first request left 8.8 ms
//! after the SDK started it here (292 certificate files), 0.5 ms with the
//! roots loaded ahead. Loading them on a thread of their own as soon as
//! the command is parsed (for commands that call AWS) overlaps that with
//! loading the playbook and the incident's state.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// Starts loading the trust store in the background and returns at once.
/// The connector built here is dropped; what stays is the SDK's
/// process-wide copy of the roots, which the first real connector reuses
/// (waiting for the load to finish if it has not).
pub fn warm() {
    let spawned = std::thread::Builder::new()
        .name("tls-roots".into())
        .spawn(|| {
            drop(
                aws_smithy_http_client::Connector::builder()
                    .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                    .build(),
            );
        });
    if let Err(e) = spawned {
        // Nothing is lost: the first connection loads it instead.
        tracing::debug!(error = %e, "could not load the TLS trust store ahead");
    }
}
