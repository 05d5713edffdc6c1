//! What a desktop decodes from switchd: `serde_json::from_slice::<ServerMsg>` on arbitrary bytes
//! (the body of one frame). Must never panic; a message that decodes must encode again, and that
//! encoding must decode.
//!
//! Set `REXIAN_FUZZ_DEBUG=1` to print what each input decoded to (useful for checking seeds).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rexian_shared::ServerMsg;

fuzz_target!(|data: &[u8]| {
    let decoded = serde_json::from_slice::<ServerMsg>(data);
    if std::env::var_os("REXIAN_FUZZ_DEBUG").is_some() {
        eprintln!("server_msg: {decoded:?}");
    }
    match decoded {
        Ok(msg) => {
            let json = serde_json::to_vec(&msg).expect("a decoded ServerMsg encodes again");
            if let Err(e) = serde_json::from_slice::<ServerMsg>(&json) {
                panic!("re-encoded ServerMsg does not decode: {e}; JSON {}", String::from_utf8_lossy(&json));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
