//! An AWS-like reverse proxy for tests and benchmarks: in front of
//! LocalStack it adds a latency per call and enforces per-API quotas,
//! answering over-quota requests exactly as AWS does, with time compressed
//! on request so a long benchmark fits in a minute; where LocalStack's
//! answer differs from AWS's in a way that changes a client's calls, it
//! answers as AWS does (`aws_like`).

pub mod answer;
pub mod aws_like;
pub mod classify;
pub mod quota;
pub mod report;
pub mod server;

pub use quota::{Quotas, Rule, AWS_DEFAULTS};
pub use server::{Config, Proxy, ProxyError};
