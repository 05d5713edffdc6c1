//! What the status query says about a ticket (IVR-6): kind, state, department, time limit and
//! reply in natural Mandarin — never the caller's or anyone's personal data.

use chrono::{Datelike, NaiveDate};
use rexian_shared::Ticket;

/// 1..=99 in Chinese numerals (三十一), so a date is read as a date, not digit by digit.
pub fn zh_count(n: u32) -> String {
    const D: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => D[n as usize].to_owned(),
        10..=19 => format!("十{}", if n == 10 { "" } else { D[(n % 10) as usize] }),
        20..=99 => format!("{}十{}", D[(n / 10) as usize], if n.is_multiple_of(10) { "" } else { D[(n % 10) as usize] }),
        _ => n.to_string(),
    }
}

/// `2026年11月30日` as it is spoken: 二零二六年十一月三十日.
pub fn zh_date(d: NaiveDate) -> String {
    let year: String = d.year().to_string();
    format!("{}年{}月{}日", crate::media::prompt::spell_digits(&year), zh_count(d.month()), zh_count(d.day()))
}

/// The status sentence for `ticket`; `department` is the lead department's name.
pub fn status(ticket: &Ticket, department: Option<&str>) -> String {
    let mut s = format!(
        "您查询的{}工单于{}登记，当前状态为{}。",
        ticket.kind.zh(),
        zh_date(ticket.created_at.date()),
        ticket.state.zh()
    );
    if let Some(d) = department {
        s.push_str(&format!("承办部门为{d}。"));
    }
    match ticket.reply.as_deref().or(ticket.answer.as_deref()) {
        Some(reply) => s.push_str(&format!("答复内容如下：{}。", reply.trim().trim_end_matches('。'))),
        None if !ticket.state.is_final() => {
            if let Some(due) = ticket.due_date {
                s.push_str(&format!("办理时限为{}。", zh_date(due)));
            }
        }
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_are_spoken_as_such() {
        let spoken: Vec<String> = [1, 10, 11, 20, 21, 30, 31].map(zh_count).to_vec();
        assert_eq!(spoken, ["一", "十", "十一", "二十", "二十一", "三十", "三十一"]);
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        assert_eq!(zh_date(d), "二零二六年十一月三十日");
    }
}
