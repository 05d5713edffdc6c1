//! The validated domain values of `rexian_shared::domain`, parsed from arbitrary UTF-8 (as they
//! arrive from desktops, the IVR's DTMF, the CLI and imports). Invalid UTF-8 is skipped.
//!
//! For each of `TicketNo`, `PhoneNumber`, `AgentNo`, `Username` and `CreditCode`:
//! * `parse` never panics, and its error's `Display` never panics;
//! * a parsed value is canonical: its `as_ref()` string parses again to an equal value, and
//!   `Display` prints exactly that string;
//! * it survives the JSON round trip it takes on the wire (`Deserialize` goes through `parse`);
//! * type-specific: `PhoneNumber::masked()` has as many characters as the number and keeps
//!   only its first 3 and last 4; the digit-only values hold only ASCII digits of the
//!   documented length.
//!
//! Set `REXIAN_FUZZ_DEBUG=1` to print what each input parsed to (useful for checking seeds).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rexian_shared::{AgentNo, CreditCode, InvalidValue, PhoneNumber, TicketNo, Username};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::{Debug, Display};

fn check<T>(name: &str, input: &str, parse: fn(&str) -> Result<T, InvalidValue>) -> Option<T>
where
    T: AsRef<str> + Display + Debug + PartialEq + Serialize + DeserializeOwned,
{
    let value = match parse(input) {
        Ok(v) => v,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    let text = value.as_ref();
    if std::env::var_os("REXIAN_FUZZ_DEBUG").is_some() {
        eprintln!("{name}: {input:?} -> {text:?}");
    }
    assert_eq!(value.to_string(), text, "{name}: Display differs from as_ref()");
    match parse(text) {
        Ok(again) => assert_eq!(
            again,
            value,
            "{name}: {input:?} parsed to {text:?}, but {text:?} parses to {:?}",
            again.as_ref()
        ),
        Err(e) => panic!("{name}: {input:?} parsed to {text:?}, but {text:?} is refused: {e}"),
    }
    let json = serde_json::to_string(&value).expect("serialize");
    match serde_json::from_str::<T>(&json) {
        Ok(back) => assert_eq!(back, value, "{name}: JSON {json} deserializes to {:?}", back.as_ref()),
        Err(e) => panic!("{name}: JSON {json} of {input:?} does not deserialize: {e}"),
    }
    Some(value)
}

fn all_digits(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };

    if let Some(t) = check("TicketNo", s, TicketNo::parse) {
        assert!(all_digits(t.as_ref(), 12..=16), "TicketNo {:?}", t.as_ref());
    }

    if let Some(p) = check("PhoneNumber", s, PhoneNumber::parse) {
        let number = p.as_ref();
        assert!(all_digits(number, 3..=20), "PhoneNumber {number:?}");
        let masked = p.masked();
        let n = number.chars().count();
        assert_eq!(masked.chars().count(), n, "masked {masked:?} of {number:?}");
        if n > 7 {
            assert_eq!(&masked[..3], &number[..3], "masked {masked:?} of {number:?}");
            assert_eq!(&masked[masked.len() - 4..], &number[n - 4..], "masked {masked:?} of {number:?}");
            assert!(masked[3..masked.len() - 4].bytes().all(|b| b == b'*'), "masked {masked:?}");
        } else {
            assert!(masked.bytes().all(|b| b == b'*'), "masked {masked:?} of {number:?}");
        }
    }

    if let Some(a) = check("AgentNo", s, AgentNo::parse) {
        assert!(all_digits(a.as_ref(), 3..=6), "AgentNo {:?}", a.as_ref());
    }

    if let Some(u) = check("Username", s, Username::parse) {
        let u = u.as_ref();
        assert!((2..=32).contains(&u.len()), "Username {u:?}");
        assert!(
            u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "Username {u:?}"
        );
    }

    if let Some(c) = check("CreditCode", s, CreditCode::parse) {
        let c = c.as_ref();
        assert_eq!(c.len(), 18, "CreditCode {c:?}");
        assert!(c.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()), "CreditCode {c:?}");
        // with_check on the first 17 characters rebuilds the same code.
        let rebuilt = CreditCode::with_check(&c[..17]).expect("with_check of a valid body");
        assert_eq!(rebuilt.as_ref(), c, "CreditCode::with_check disagrees with parse");
    }
});
