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

/// Reads one frame; `Ok(None)` when the stream ended cleanly between frames. A stream that ends
/// inside a frame (even inside its length) is an error.
pub async fn read<R: AsyncReadExt + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, CodecError> {
    let mut len = [0u8; 4];
    if r.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut len[1..]).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    // Grow with what actually arrives rather than trusting the announced length up front.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(serde_json::from_slice(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientMsg;

    async fn decode(bytes: &[u8]) -> Result<Option<ClientMsg>, CodecError> {
        read(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn clean_end_truncation_and_oversize() {
        let frame = encode(&ClientMsg::Hello { version: 1, client: "t".into() }).expect("encode");
        assert!(matches!(decode(&frame).await, Ok(Some(ClientMsg::Hello { version: 1, .. }))));
        assert!(matches!(decode(&[]).await, Ok(None)), "clean end between frames");
        for cut in 1..frame.len() {
            assert!(decode(&frame[..cut]).await.is_err(), "a frame cut after {cut} bytes is an error");
        }
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(decode(&huge).await, Err(CodecError::TooLarge(_))));
    }
}
