//! Whole-line plumbing shared by the stdio frontend and the stdio backends: one writer per pipe
//! that writes complete lines in arrival order (so messages from two sources never interleave
//! mid-line), and a pump that turns a byte stream into such lines.

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};

/// What a line writer writes.
#[derive(Debug)]
pub enum Out {
    /// One whole line (a `\n` is added if it lacks one).
    Line(Vec<u8>),
    /// One line that arrives in pieces, written as they come and before anything else: a
    /// large answer goes out while it is made, never held whole.
    Pieces(mpsc::Receiver<Vec<u8>>),
    /// Not written: answered once everything sent before it has been written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl From<Vec<u8>> for Out {
    fn from(line: Vec<u8>) -> Out {
        Out::Line(line)
    }
}

/// Writes whole lines to `sink` in the order they arrive.
pub async fn write_lines<W: AsyncWrite + Unpin, T: Into<Out>>(
    mut sink: W,
    mut lines: mpsc::UnboundedReceiver<T>,
) {
    let mut next: Option<Out> = None;
    loop {
        let item = match next.take() {
            Some(item) => item,
            None => match lines.recv().await {
                Some(item) => item.into(),
                None => break,
            },
        };
        let written = match item {
            Out::Line(mut line) => {
                terminate(&mut line);
                // Write what is queued in one go.
                while line.len() <= 64 * 1024 {
                    match lines.try_recv().map(Into::into) {
                        Ok(Out::Line(mut more)) => {
                            terminate(&mut more);
                            line.extend_from_slice(&more);
                        }
                        Ok(pieces) => {
                            next = Some(pieces);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write(&mut sink, &line).await
            }
            Out::Pieces(mut pieces) => {
                let mut ended = true;
                let mut written = true;
                while let Some(piece) = pieces.recv().await {
                    if let Some(&last) = piece.last() {
                        ended = last == b'\n';
                    }
                    if !write(&mut sink, &piece).await {
                        written = false;
                        break;
                    }
                }
                written && (ended || write(&mut sink, b"\n").await)
            }
            Out::Flush(done) => {
                let _ = done.send(());
                true
            }
        };
        if !written {
            break;
        }
    }
    let _ = sink.shutdown().await;
}

fn terminate(line: &mut Vec<u8>) {
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
}

async fn write<W: AsyncWrite + Unpin>(sink: &mut W, bytes: &[u8]) -> bool {
    sink.write_all(bytes).await.is_ok() && sink.flush().await.is_ok()
}

/// Forwards each line rmcp writes to the line writer.
pub async fn pump_lines<R: AsyncRead + Unpin>(source: R, out: mpsc::UnboundedSender<Out>) {
    let mut reader = BufReader::new(source);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if out.send(Out::Line(line)).is_err() {
                    break;
                }
            }
        }
    }
}

/// How much a pipe magg writes to may hold: a large answer (a page of 1000 tools is a
/// megabyte or more) then crosses in a few writes, not one per 64 KiB the reader takes.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Widens the pipe on file descriptor `fd` to [`PIPE_BYTES`] where it is a pipe and the
/// system allows it (`/proc/sys/fs/pipe-max-size`); otherwise leaves it as it is.
pub fn widen_pipe(fd: libc::c_int) {
    // SAFETY: F_SETPIPE_SZ only resizes the kernel's buffer of an open pipe; on any other
    // descriptor, or above the allowed size, it fails and changes nothing.
    let result = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
    if result < 0 {
        tracing::debug!(
            "stdout pipe keeps its size: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The largest message magg takes, on any transport, from clients and backends alike: a
/// message line on a pipe, or a request body over HTTP. Bigger ones are refused (a request
/// gets an error response) and the connection goes on.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How much of a line that was too long is kept, to find its request id.
const HEAD_BYTES: usize = 4096;

/// The most a line buffer keeps between lines: one large message (a backend's whole tool list)
/// does not keep its size for the life of the connection.
const KEEP_BYTES: usize = 64 * 1024;

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line (with its `\n`, if any) is in the buffer.
    Complete,
    /// A line longer than the limit was read and thrown away: its size, and its first bytes
    /// (in the buffer), where a request's id usually is.
    TooLong {
        /// The line's length in bytes.
        bytes: usize,
    },
    /// End of input (or a read error).
    End,
}

/// Reads one line into `buf` (cleared first, and shrunk if a large line grew it), keeping at
/// most `max` bytes in memory: a longer line is read to its end and discarded, leaving its
/// first few kilobytes in `buf`.
pub async fn read_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Line {
    buf.clear();
    if buf.capacity() > KEEP_BYTES {
        buf.shrink_to(KEEP_BYTES);
    }
    let mut dropped = 0usize;
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                return if buf.is_empty() && dropped == 0 {
                    Line::End
                } else if dropped > 0 {
                    Line::TooLong { bytes: dropped }
                } else {
                    Line::Complete
                };
            }
            Ok(bytes) => bytes,
        };
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if dropped == 0 && buf.len() + take <= max {
            buf.extend_from_slice(&available[..take]);
        } else {
            if dropped == 0 {
                dropped = buf.len();
                buf.truncate(HEAD_BYTES);
            }
            let room = HEAD_BYTES.saturating_sub(buf.len()).min(take);
            buf.extend_from_slice(&available[..room]);
            dropped += take;
        }
        reader.consume(take);
        if done {
            return if dropped > 0 {
                Line::TooLong { bytes: dropped }
            } else {
                Line::Complete
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_dropped_and_reading_goes_on() {
        let input: &[u8] = b"short\nthis line is far too long\nok\n";
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 10).await, Line::Complete);
        assert_eq!(buf, b"short\n");
        assert_eq!(
            read_line(&mut reader, &mut buf, 10).await,
            Line::TooLong { bytes: 26 }
        );
        assert_eq!(buf, b"this line is far too long\n", "its head is kept");
        assert_eq!(read_line(&mut reader, &mut buf, 10).await, Line::Complete);
        assert_eq!(buf, b"ok\n");
        assert_eq!(read_line(&mut reader, &mut buf, 10).await, Line::End);
    }
}
