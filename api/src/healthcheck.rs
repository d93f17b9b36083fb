//! `flagstream-api healthcheck URL`: a plain HTTP/1.0 GET for the container health check.
//! The runtime image has no shell, curl or wget, and an HTTP client crate would be a large
//! dependency for one request to a local port, so only `http://host:port/path` is spoken.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Succeeds when `url` answers with a 2xx status within five seconds.
pub async fn probe(url: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::Config(format!("health check URL must start with http://: {url}")))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let status = tokio::time::timeout(TIMEOUT, get(authority, path))
        .await
        .map_err(|_| Error::Unavailable(format!("{url} did not answer within {TIMEOUT:?}")))?
        .map_err(|e| Error::Unavailable(format!("{url}: {e}")))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(Error::Unavailable(format!("{url} answered {status}")))
    }
}

async fn get(authority: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 16];
    let mut read = 0;
    // "HTTP/1.x NNN" is 12 bytes; a short read may deliver fewer.
    while read < 12 {
        match stream.read(&mut head[read..]).await? {
            0 => break,
            n => read += n,
        }
    }
    std::str::from_utf8(&head[..read])
        .ok()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}
