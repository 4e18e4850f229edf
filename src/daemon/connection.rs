//! One connection on the daemon's socket: its preamble decides what it is, a
//! control command (`status`, `stop`, …: [`super::control`]) or a session
//! ([`crate::session`]), and the daemon answers the preamble before either
//! runs. This is the only place that reads a preamble off the wire; the HTTP
//! front door builds its sessions' preambles itself.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::framing::{Frame, LineCodec};
use crate::gateway::Gateway;
use crate::preamble::{self, PreambleReply};

/// The largest preamble accepted: it carries the client's whole environment,
/// so it has its own limit, not the (possibly small) message limit.
const PREAMBLE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// How long a new connection may take to send its preamble.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one accepted connection until it closes or the daemon shuts down.
pub async fn serve<S>(gateway: Arc<Gateway>, stream: S, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut frames = FramedRead::new(read, LineCodec::new(PREAMBLE_MAX_BYTES));
    let first = tokio::time::timeout(PREAMBLE_TIMEOUT, frames.next()).await;
    // Between frames the codec holds no partial state, so it can be swapped.
    *frames.decoder_mut() = LineCodec::new(gateway.config().max_message_bytes);
    let preamble = match first {
        Ok(Some(Ok(Frame::Line(line)))) => preamble::parse(&line),
        Ok(Some(Ok(Frame::TooLong))) => Err(format!("the preamble is larger than {PREAMBLE_MAX_BYTES} bytes")),
        Ok(Some(Err(e))) => Err(format!("reading the preamble failed: {e}")),
        Ok(None) => return,
        Err(_) => Err(format!("no preamble within {} s", PREAMBLE_TIMEOUT.as_secs())),
    };
    let preamble = match preamble {
        Ok(p) => p,
        Err(reason) => {
            warn!(%reason, "refused a connection");
            let _ = write_json(&mut write, &PreambleReply::refused(reason)).await;
            return;
        }
    };
    if let Some(command) = preamble.control.clone() {
        super::control::handle(&gateway, &command, &preamble, write, shutdown).await;
        return;
    }
    let admitted = match crate::session::admit(&gateway, preamble) {
        Ok(admitted) => admitted,
        Err(reason) => {
            let _ = write_json(&mut write, &PreambleReply::refused(reason)).await;
            return;
        }
    };
    if write_json(&mut write, &PreambleReply::accepted(Some(admitted.id().to_string()))).await.is_err() {
        return;
    }
    crate::session::serve(gateway, admitted, frames, write, shutdown).await;
}

/// Writes one JSON line (a preamble reply, a control answer).
pub(super) async fn write_json<W: AsyncWrite + Unpin, T: serde::Serialize>(
    write: &mut W,
    value: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}
