//! Validated domain values. Each is built by `parse`, so an invalid value cannot travel.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused; the message names the field in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field_zh}（{field}）无效：{reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub field_zh: &'static str,
    pub reason: String,
}

impl InvalidValue {
    fn new(field: &'static str, field_zh: &'static str, reason: impl Into<String>) -> Self {
        Self { field, field_zh, reason: reason.into() }
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// A ticket number a caller can key on a phone pad: the registration date (YYYYMMDD) followed by
/// a daily sequence of at least four digits, e.g. `202611290001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketNo(String);
string_newtype!(TicketNo);

impl TicketNo {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let bad = |r: &str| InvalidValue::new("ticket_no", "工单编号", r);
        if !(12..=16).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("应为12至16位数字 / must be 12 to 16 digits"));
        }
        chrono::NaiveDate::parse_from_str(&s[..8], "%Y%m%d")
            .map_err(|_| bad("前8位应为日期 / the first 8 digits must be a date"))?;
        Ok(Self(s.to_owned()))
    }

    /// Builds the number for the `seq`-th ticket registered on `date` (seq starts at 1).
    pub fn from_parts(date: chrono::NaiveDate, seq: u32) -> Self {
        Self(format!("{}{:04}", date.format("%Y%m%d"), seq))
    }
}

/// A telephone number in national form: digits only, 3 to 20 of them (mobile, fixed line with
/// area code, 400/800 or short service numbers), as carriers present them in many ways:
/// separators are removed; `+86` / `0086` (and a bare `86` before a mobile number) dropped,
/// a fixed line after it getting its trunk prefix back (`+86 10 6552 9988` → `01065529988`);
/// a mobile number with a long-distance `0` in front (`013800138000`) loses it. 400/800 and
/// short service numbers are kept as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);
string_newtype!(PhoneNumber);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let cleaned: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let national = national_form(&cleaned);
        let national = national.as_str();
        if !(3..=20).contains(&national.len()) || !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new("phone", "电话号码", "应为3至20位数字 / must be 3 to 20 digits"));
        }
        // A national number never starts with the international prefix; refusing it keeps
        // parsing idempotent (found by the domain_values fuzz target: 00860086).
        if national.starts_with("00") {
            return Err(InvalidValue::new("phone", "电话号码", "不支持国际号码 / international numbers are not supported"));
        }
        Ok(Self(national.to_owned()))
    }

    /// The number in E.164 (`+8613800138000`, `+861065529988`, `+864001234567`), for trunks
    /// that want it; short service numbers (fewer than 7 digits) stay as they are.
    pub fn e164(&self) -> String {
        let n = self.0.as_str();
        match n.strip_prefix('0') {
            Some(rest) if !rest.is_empty() => format!("+86{rest}"),
            _ if n.len() >= 7 => format!("+86{n}"),
            _ => n.to_owned(),
        }
    }

    /// The number as a department handler may see it: 138****1234.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 3, 4)
    }
}

/// A mainland mobile number: 1[3-9] and nine more digits.
fn is_mobile(n: &str) -> bool {
    n.len() == 11 && n.as_bytes()[0] == b'1' && (b'3'..=b'9').contains(&n.as_bytes()[1]) && n.bytes().all(|b| b.is_ascii_digit())
}

fn is_fixed_line_after_country_code(rest: &str) -> bool {
    let area = rest.starts_with("10") || rest.starts_with(|c: char| ('2'..='9').contains(&c));
    (9..=11).contains(&rest.len()) && area && !is_mobile(rest) && !rest.starts_with("400") && !rest.starts_with("800")
}

/// See [`PhoneNumber`]: the national form of a number without separators. A mobile number may
/// still hide behind a long-distance 0 or a bare 86 after the country code is gone; those go
/// too, so parsing the form again gives it back.
fn national_form(cleaned: &str) -> String {
    let mut number = country_code_dropped(cleaned);
    loop {
        match number.strip_prefix('0').or_else(|| number.strip_prefix("86")).filter(|rest| is_mobile(rest)) {
            Some(mobile) => number = mobile.to_owned(),
            None => return number,
        }
    }
}

fn country_code_dropped(cleaned: &str) -> String {
    let international = cleaned.strip_prefix("+86").or_else(|| cleaned.strip_prefix("0086"));
    let international = international.or_else(|| cleaned.strip_prefix("86").filter(|rest| is_mobile(rest)));
    match international {
        // After the country code a fixed line's area code (10 for Beijing, else 2–9…) comes
        // without its trunk prefix 0; 400/800 numbers have none.
        Some(rest) if is_fixed_line_after_country_code(rest) => {
            format!("0{rest}")
        }
        Some(rest) => rest.to_owned(),
        None => match cleaned.strip_prefix('0') {
            Some(rest) if is_mobile(rest) => rest.to_owned(),
            _ => cleaned.to_owned(),
        },
    }
}

/// An agent's short number (工号), 3 to 6 digits, read out to callers digit by digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentNo(String);
string_newtype!(AgentNo);

impl AgentNo {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if !(3..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new("agent_no", "工号", "应为3至6位数字 / must be 3 to 6 digits"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A login name: 2 to 32 characters of ASCII letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);
string_newtype!(Username);

impl Username {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !(2..=32).contains(&s.len()) || !s.chars().all(ok_char) {
            return Err(InvalidValue::new(
                "username",
                "用户名",
                "应为2至32位字母、数字、点、下划线或连字符 / 2 to 32 letters, digits, '.', '_' or '-'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A unified social credit code (统一社会信用代码): 18 characters, digits and upper-case letters
/// without I, O, Z, S, V, with the GB 32100-2015 check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode(String);
string_newtype!(CreditCode);

const CREDIT_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl CreditCode {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim().to_ascii_uppercase();
        let bad = |r: &str| InvalidValue::new("credit_code", "统一社会信用代码", r);
        let values: Option<Vec<u32>> =
            s.chars().map(|c| CREDIT_ALPHABET.find(c).map(|i| i as u32)).collect();
        let values = values.filter(|v| v.len() == 18).ok_or_else(|| bad("应为18位代码 / must be 18 characters"))?;
        let sum: u32 = values[..17].iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(bad("校验位不符 / check character does not match"));
        }
        Ok(Self(s))
    }

    /// Appends the check character to a 17-character body (used by demo data and tests).
    pub fn with_check(body17: &str) -> Result<Self, InvalidValue> {
        let values: Vec<u32> = body17.chars().filter_map(|c| CREDIT_ALPHABET.find(c).map(|i| i as u32)).collect();
        let sum: u32 = values.iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
        let check = CREDIT_ALPHABET.chars().nth(((31 - sum % 31) % 31) as usize).unwrap_or('0');
        Self::parse(&format!("{body17}{check}"))
    }
}

/// Replaces all but the first `keep_head` and last `keep_tail` characters with `*`.
pub fn mask_middle(s: &str, keep_head: usize, keep_tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= keep_head + keep_tail {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - keep_head - keep_tail;
    let mut out: String = chars[..keep_head].iter().collect();
    out.push_str(&"*".repeat(hidden));
    out.extend(&chars[chars.len() - keep_tail..]);
    out
}

/// An enum of fixed codes with Chinese and English labels: `code()` for the store and the wire
/// (also its serde name), `zh()` shown first, `en()` alongside, `from_code`, `ALL`, `Display`.
/// Exported so switchd's own labelled values (ACD reason codes, …) share one definition.
#[macro_export]
macro_rules! labelled_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $code:literal, $zh:literal, $en:literal;)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Stable code used in the store, the CLI and the wire.
            pub fn code(self) -> &'static str { match self { $($name::$variant => $code),+ } }
            /// Chinese label (shown first).
            pub fn zh(self) -> &'static str { match self { $($name::$variant => $zh),+ } }
            /// English label (shown alongside).
            pub fn en(self) -> &'static str { match self { $($name::$variant => $en),+ } }
            /// The value with this code.
            pub fn from_code(s: &str) -> Option<Self> {
                match s { $($code => Some($name::$variant),)+ _ => None }
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.code()) }
        }
    };
}

labelled_enum!(
    /// What a user may do is decided by their role.
    Role {
        Admin => "admin", "管理员", "administrator";
        Agent => "agent", "话务员", "agent";
        Supervisor => "supervisor", "班长", "supervisor";
        Handler => "handler", "承办人", "department handler";
        Leader => "leader", "领导", "leader";
    }
);

labelled_enum!(
    /// TKT-1 kinds of ticket.
    TicketKind {
        Complaint => "complaint", "投诉", "complaint";
        Report => "report", "举报", "report";
        Consultation => "consultation", "咨询", "consultation";
        Suggestion => "suggestion", "建议", "suggestion";
        Praise => "praise", "表扬", "praise";
        DirectorMailbox => "director_mailbox", "局长信箱", "director's mailbox";
        BusinessApplication => "business_application", "业务受理", "business application";
    }
);

labelled_enum!(
    /// How the matter reached the hotline.
    Channel {
        Phone => "phone", "电话", "phone";
        IvrMessage => "ivr_message", "语音留言", "IVR message";
        Fax => "fax", "传真", "fax";
        Email => "email", "电子邮件", "e-mail";
        Web => "web", "网站", "web";
        Letter => "letter", "来信", "letter";
        WalkIn => "walk_in", "来访", "walk-in";
    }
);

labelled_enum!(
    /// TKT-4 workflow states. See `switchd::cases::workflow` for the transitions.
    TicketState {
        Registered => "registered", "已登记", "registered";
        Accepted => "accepted", "已受理", "accepted";
        NotAccepted => "not_accepted", "不予受理", "not accepted";
        Dispatched => "dispatched", "已转办", "dispatched";
        Acknowledged => "acknowledged", "已签收", "acknowledged";
        InProgress => "in_progress", "办理中", "in progress";
        Returned => "returned", "已退回", "returned";
        Replied => "replied", "已答复", "replied";
        CalledBack => "called_back", "已回访", "called back";
        LaterReply => "later_reply", "待答复", "later reply pending";
        Closed => "closed", "已办结", "closed";
        Merged => "merged", "已合并", "merged";
    }
);

impl TicketState {
    /// States in which no deadline runs.
    pub fn is_final(self) -> bool {
        matches!(self, TicketState::Closed | TicketState::Merged | TicketState::NotAccepted)
    }
}

labelled_enum!(
    /// Five-level satisfaction recorded at the callback (回访).
    Satisfaction {
        VerySatisfied => "very_satisfied", "非常满意", "very satisfied";
        Satisfied => "satisfied", "满意", "satisfied";
        Neutral => "neutral", "基本满意", "neutral";
        Dissatisfied => "dissatisfied", "不满意", "dissatisfied";
        VeryDissatisfied => "very_dissatisfied", "非常不满意", "very dissatisfied";
    }
);

labelled_enum!(
    /// Reason codes for not accepting a ticket (不予受理).
    RejectReason {
        OutOfScope => "out_of_scope", "不属于受理范围", "outside the hotline's remit";
        Duplicate => "duplicate", "重复投诉", "duplicate";
        InsufficientInfo => "insufficient_info", "信息不全无法核实", "not enough information";
        InLitigation => "in_litigation", "已进入诉讼或仲裁程序", "already before a court or arbitration";
        Other => "other", "其他", "other";
    }
);

labelled_enum!(
    /// Knowledge-base article categories (KB-1).
    ArticleKind {
        Regulation => "regulation", "政策法规", "policies and regulations";
        Guide => "guide", "办事指南", "service guide";
        Duty => "duty", "部门职能", "department duties";
        Scope => "scope", "受理范围", "acceptance scope";
        Faq => "faq", "常见问题", "FAQ";
        Address => "address", "地址与办公时间", "addresses and office hours";
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_no_accepts_date_and_sequence() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).expect("date");
        let no = TicketNo::from_parts(d, 7);
        assert_eq!(no.as_ref(), "202611290007");
        assert_eq!(TicketNo::parse("202611290007"), Ok(no));
        assert!(TicketNo::parse("20261329000").is_err());
        assert!(TicketNo::parse("2026132900011").is_err(), "month 13");
        assert!(TicketNo::parse("20261129000a").is_err());
    }

    #[test]
    fn phone_is_normalised_and_masked() {
        let p = PhoneNumber::parse("+86 138-0013-1234").expect("phone");
        assert_eq!(p.as_ref(), "13800131234");
        assert_eq!(p.masked(), "138****1234");
        assert!(PhoneNumber::parse("12a45").is_err());
        assert!(PhoneNumber::parse("00860086").is_err(), "fuzz regression");
        assert!(PhoneNumber::parse("+860086123").is_err(), "fuzz regression");
        assert_eq!(PhoneNumber::parse("008601012365").map(|p| p.to_string()), Ok("01012365".into()));
        let national = |s: &str| PhoneNumber::parse(s).map(|p| p.to_string());
        for (raw, want) in [
            ("+8613800138000", "13800138000"),
            ("8613800138000", "13800138000"),
            ("013800138000", "13800138000"),
            ("+86 10 6552 9988", "01065529988"),
            ("0086 20-8888-6666", "02088886666"),
            ("010-65529988", "01065529988"),
            ("+864001234567", "4001234567"),
            ("8001234567", "8001234567"),
            ("+8612365", "12365"),
            ("12365", "12365"),
            ("95588", "95588"),
            // Found by the domain_values fuzz target: a country code, then a long-distance 0
            // before a mobile.
            ("0086))))(015 1(01568656", "15101568656"),
            ("+868613800138000", "13800138000"),
        ] {
            assert_eq!(national(raw), Ok(want.into()), "{raw}");
            assert_eq!(national(want), Ok(want.into()), "{want} stays as it is");
        }
        let e164 = |s: &str| PhoneNumber::parse(s).map(|p| p.e164());
        assert_eq!(e164("13800138000"), Ok("+8613800138000".into()));
        assert_eq!(e164("010-65529988"), Ok("+861065529988".into()));
        assert_eq!(e164("4001234567"), Ok("+864001234567".into()));
        assert_eq!(e164("12365"), Ok("12365".into()));
        let e = PhoneNumber::parse("").expect_err("empty");
        assert!(e.to_string().contains("电话号码"));
    }

    #[test]
    fn credit_code_check_character() {
        // A published example code.
        assert!(CreditCode::parse("91350100M000100Y43").is_ok());
        assert!(CreditCode::parse("91350100M000100Y44").is_err());
        let made = CreditCode::with_check("91110000600037341").expect("made");
        assert_eq!(made.as_ref().len(), 18);
    }

    #[test]
    fn enum_codes_round_trip() {
        for k in TicketKind::ALL {
            assert_eq!(TicketKind::from_code(k.code()), Some(*k));
            assert_eq!(serde_json::to_string(k).expect("json"), format!("\"{}\"", k.code()));
        }
    }
}
