//! The desk protocol's framing as switchd reads it from a desktop: a 4-byte big-endian length,
//! then that many bytes of JSON (`rexian_shared::codec`), decoded as `ClientMsg`.
//!
//! The input is treated as the bytes a client sent on its control stream. Two decoders read it:
//! a reference decoder written here (length prefix + `serde_json::from_slice::<ClientMsg>`), and
//! the real `codec::read` on a current-thread tokio runtime over `&data[..]`. Neither may panic,
//! and both must agree frame by frame. Every message that decodes must encode again
//! (`codec::encode`) into a frame that decodes.
//!
//! Set `REXIAN_FUZZ_DEBUG=1` to print what each input decoded to (useful for checking seeds).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rexian_shared::codec::{self, CodecError, MAX_FRAME};
use rexian_shared::ClientMsg;
use std::sync::OnceLock;

/// Frames read from one input at most (a stream may hold several messages back to back).
const MAX_FRAMES: usize = 8;

#[derive(Debug, PartialEq)]
enum Step {
    /// No more frames (`Ok(None)`).
    End,
    /// The length prefix exceeded `MAX_FRAME`.
    TooLarge(usize),
    /// The stream ended inside the body.
    Truncated,
    /// The body was not a `ClientMsg`.
    Malformed,
    /// A message, as its canonical JSON.
    Msg(String),
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("current-thread runtime")
    })
}

fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("REXIAN_FUZZ_DEBUG").is_some())
}

fn canonical(msg: &ClientMsg) -> String {
    let frame = codec::encode(msg).expect("a decoded ClientMsg encodes again");
    let again: ClientMsg = serde_json::from_slice(&frame[4..])
        .unwrap_or_else(|e| panic!("re-encoded ClientMsg does not decode: {e}; frame body {:?}", String::from_utf8_lossy(&frame[4..])));
    drop(again);
    String::from_utf8(frame[4..].to_vec()).expect("serde_json writes UTF-8")
}

/// The frame format decoded by hand.
fn reference(mut rest: &[u8]) -> Vec<Step> {
    let mut steps = Vec::new();
    while steps.len() < MAX_FRAMES {
        if rest.is_empty() {
            steps.push(Step::End);
            break;
        }
        if rest.len() < 4 {
            // A stream cut after 1 to 3 bytes of a length prefix is a truncated frame, not a
            // clean end (`codec::read` was changed to say so in 777cd23; this model had kept
            // the old behaviour, so the target failed on its first input).
            steps.push(Step::Truncated);
            break;
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > MAX_FRAME {
            steps.push(Step::TooLarge(len));
            break;
        }
        if rest.len() < len {
            steps.push(Step::Truncated);
            break;
        }
        let (body, tail) = rest.split_at(len);
        rest = tail;
        match serde_json::from_slice::<ClientMsg>(body) {
            Ok(msg) => steps.push(Step::Msg(canonical(&msg))),
            Err(_) => {
                steps.push(Step::Malformed);
                break;
            }
        }
    }
    steps
}

/// The real decoder, as the desk server calls it.
fn real(data: &[u8]) -> Vec<Step> {
    runtime().block_on(async {
        let mut reader: &[u8] = data;
        let mut steps = Vec::new();
        while steps.len() < MAX_FRAMES {
            match codec::read::<_, ClientMsg>(&mut reader).await {
                Ok(Some(msg)) => steps.push(Step::Msg(canonical(&msg))),
                Ok(None) => {
                    steps.push(Step::End);
                    break;
                }
                Err(e) => {
                    let _ = e.to_string();
                    steps.push(match e {
                        CodecError::TooLarge(n) => Step::TooLarge(n),
                        CodecError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => Step::Truncated,
                        CodecError::Malformed(_) => Step::Malformed,
                        other => panic!("unexpected codec error on an in-memory stream: {other:?}"),
                    });
                    break;
                }
            }
        }
        steps
    })
}

fuzz_target!(|data: &[u8]| {
    let expected = reference(data);
    let got = real(data);
    if debug() {
        eprintln!("desk_frame: {got:?}");
    }
    assert_eq!(got, expected, "codec::read disagrees with the frame format");
});
