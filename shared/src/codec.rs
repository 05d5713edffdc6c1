//! Framing: each message is a 4-byte big-endian length followed by that many bytes of JSON.

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame either side accepts (attachments travel base64-encoded inside frames).
pub const MAX_FRAME: usize = 24 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The stream failed or closed mid-frame.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// The frame was not a valid message.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encodes one message as a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(CodecError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub async fn write<W: AsyncWriteExt + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), CodecError> {
    w.write_all(&encode(msg)?).await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` when the stream ended cleanly between frames.
pub async fn read<R: AsyncReadExt + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, CodecError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(serde_json::from_slice(&body)?))
}
