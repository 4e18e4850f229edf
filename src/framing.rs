//! Newline-delimited JSON framing with a size limit that does not end the stream.
//!
//! MCP's stdio transport is one message per line. A peer that sends an oversize
//! line must get an error for that line and nothing more: the codec skips to the
//! next newline and the connection goes on. `AnyDelimiterCodec` already discards
//! an oversize chunk up to its delimiter; this wrapper turns its error into a
//! frame so `FramedRead` (which stops after an error) keeps reading.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Default limit for one message: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// One frame read from a line-delimited peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its newline (and without a trailing `\r`).
    Line(Bytes),
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
}

/// Decoder for [`Frame`]s.
///
/// The search works like `tokio_util`'s `AnyDelimiterCodec` (which this
/// replaced: it tests every byte against a list of delimiters, a measurable
/// share of the daemon's work per message): it resumes where the last search
/// stopped, looks at most `max_len + 1` bytes ahead, and after an oversize
/// line discards up to the next newline.
#[derive(Debug)]
pub struct LineCodec {
    max_len: usize,
    /// Where to resume searching for the newline.
    next_index: usize,
    /// Discarding the rest of an oversize line.
    discarding: bool,
}

impl LineCodec {
    pub fn new(max_len: usize) -> Self {
        Self { max_len, next_index: 0, discarding: false }
    }

    fn frame(&mut self, line: Bytes) -> Option<Frame> {
        let line = match line.last() {
            Some(b'\r') => line.slice(..line.len() - 1),
            _ => line,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(Frame::Line(line))
    }

    /// The next line, `Err(())` when it is longer than the limit (reported
    /// once; its bytes are then discarded up to the next newline).
    fn chunk(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ()> {
        loop {
            let read_to = self.max_len.saturating_add(1).min(buf.len());
            let newline = buf[self.next_index..read_to].iter().position(|b| *b == b'\n');
            match (self.discarding, newline) {
                (true, Some(offset)) => {
                    buf.advance(offset + self.next_index + 1);
                    self.discarding = false;
                    self.next_index = 0;
                }
                (true, None) => {
                    buf.advance(read_to);
                    self.next_index = 0;
                    if buf.is_empty() {
                        return Ok(None);
                    }
                }
                (false, Some(offset)) => {
                    let end = offset + self.next_index;
                    self.next_index = 0;
                    let mut chunk = buf.split_to(end + 1);
                    chunk.truncate(end);
                    return Ok(Some(chunk.freeze()));
                }
                (false, None) if buf.len() > self.max_len => {
                    self.discarding = true;
                    return Err(());
                }
                (false, None) => {
                    self.next_index = read_to;
                    return Ok(None);
                }
            }
        }
    }

    /// Decodes the next non-empty frame (`eof`: the peer closed, take the rest).
    fn next_frame(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Option<Frame>, std::io::Error> {
        loop {
            let chunk = match self.chunk(buf) {
                Ok(None) if eof && !buf.is_empty() => {
                    self.next_index = 0;
                    Some(buf.split_to(buf.len()).freeze())
                }
                Ok(chunk) => chunk,
                Err(()) => return Ok(Some(Frame::TooLong)),
            };
            match chunk {
                Some(line) => match self.frame(line) {
                    Some(frame) => return Ok(Some(frame)),
                    None => continue,
                },
                None => return Ok(None),
            }
        }
    }
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        self.next_frame(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        self.next_frame(buf, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            out.push(frame);
        }
        while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
            out.push(frame);
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_cr() {
        let mut codec = LineCodec::new(100);
        let frames = decode_all(&mut codec, b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}");
        assert_eq!(
            frames,
            vec![
                Frame::Line(Bytes::from_static(b"{\"a\":1}")),
                Frame::Line(Bytes::from_static(b"{\"b\":2}")),
                Frame::Line(Bytes::from_static(b"{\"c\":3}")),
            ]
        );
    }

    #[test]
    fn oversize_line_is_reported_once_and_stream_goes_on() {
        let mut codec = LineCodec::new(8);
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nshort\n");
        let frames = decode_all(&mut codec, &input);
        assert_eq!(frames, vec![Frame::TooLong, Frame::Line(Bytes::from_static(b"short"))]);
    }

    #[test]
    fn oversize_line_split_across_reads() {
        let mut codec = LineCodec::new(8);
        let mut buf = BytesMut::from(&[b'x'; 20][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::TooLong));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[b'y'; 30]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"yy\nok\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Line(Bytes::from_static(b"ok"))));
    }
}
