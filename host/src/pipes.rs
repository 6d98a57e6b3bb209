//! Whole-line plumbing shared by the stdio frontend and the stdio backends: one writer per pipe
//! that writes complete lines in arrival order (so messages from two sources never interleave
//! mid-line), and a pump that turns a byte stream into such lines.

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};

/// Writes whole lines to `sink` in the order they arrive.
pub async fn write_lines<W: AsyncWrite + Unpin>(
    mut sink: W,
    mut lines: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(mut line) = lines.recv().await {
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        // Write what is queued in one go.
        while let Ok(mut more) = lines.try_recv() {
            if more.last() != Some(&b'\n') {
                more.push(b'\n');
            }
            line.extend_from_slice(&more);
            if line.len() > 64 * 1024 {
                break;
            }
        }
        if sink.write_all(&line).await.is_err() || sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.shutdown().await;
}

/// Forwards each line rmcp writes to the line writer.
pub async fn pump_lines<R: AsyncRead + Unpin>(source: R, out: mpsc::UnboundedSender<Vec<u8>>) {
    let mut reader = BufReader::new(source);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if out.send(line).is_err() {
                    break;
                }
            }
        }
    }
}
