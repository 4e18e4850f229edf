//! The line codec fed arbitrary bytes in arbitrary pieces, with an arbitrary
//! limit. Invariants: it never fails or panics; the frames do not depend on how
//! the bytes were split; no line exceeds the limit; a too-long line gives exactly
//! one `TooLong` and the lines after it still arrive; and the lines read are the
//! input's lines (without the `\r` of a `\r\n`, blank lines skipped).
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcp_gateway::framing::{Frame, LineCodec};
use tokio_util::codec::Decoder;

#[derive(Arbitrary, Debug)]
struct Input {
    /// The limit: `max % 48`, or no limit at all for 255.
    max: u8,
    /// Sizes of the successive reads; whatever is left arrives in one last read.
    reads: Vec<u8>,
    data: Vec<u8>,
}

/// What the codec must produce for `data`, read whole.
fn expected(data: &[u8], max: usize) -> Vec<Frame> {
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    // The last piece has no newline: the rest the peer sent before closing.
    if lines.last().is_some_and(|rest| rest.is_empty()) {
        lines.pop();
    }
    let mut frames = Vec::new();
    for line in lines {
        // The limit counts the line's bytes before its newline, `\r` included.
        if line.len() > max {
            frames.push(Frame::TooLong);
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            frames.push(Frame::Line(bytes::Bytes::copy_from_slice(line)));
        }
    }
    frames
}

fuzz_target!(|input: Input| {
    let max = if input.max == 255 { usize::MAX } else { usize::from(input.max % 48) };
    let mut codec = LineCodec::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();

    let mut rest = &input.data[..];
    let mut reads = input.reads.iter().map(|&n| usize::from(n));
    loop {
        let n = reads.next().unwrap_or(rest.len()).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(frame) = codec.decode(&mut buf).expect("decode never fails") {
            frames.push(frame);
        }
        if rest.is_empty() && reads.len() == 0 {
            break;
        }
    }
    while let Some(frame) = codec.decode_eof(&mut buf).expect("decode_eof never fails") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "{} bytes left unread at the end", buf.len());

    for frame in &frames {
        if let Frame::Line(line) = frame {
            assert!(line.len() <= max, "a line of {} bytes passed the limit {max}", line.len());
            assert!(!line.contains(&b'\n'), "a line with a newline in it");
        }
    }
    let want = expected(&input.data, max);
    assert_eq!(frames, want, "max {max}, reads {:?}", input.reads);

    // With no line too long, the lines read are the input, line for line.
    if !want.contains(&Frame::TooLong) {
        let joined: Vec<u8> = frames
            .iter()
            .map(|f| match f {
                Frame::Line(l) => l.to_vec(),
                Frame::TooLong => unreachable!(),
            })
            .collect::<Vec<_>>()
            .join(&b'\n');
        let normalised: Vec<u8> = input
            .data
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect::<Vec<_>>()
            .join(&b'\n');
        assert_eq!(joined, normalised);
    }
});
