//! Statutory deadlines (TKT-5): which deadline runs in which stage, counted in working days on
//! the calendar. Pure: the caller passes today's date.

use crate::calendar::{Calendar, Deadline};
use chrono::NaiveDate;
use rexian_shared::{DeadlineStage, Ticket, TicketAction, TicketKind};
use serde::{Deserialize, Serialize};

/// Working days per timer; the `[deadlines]` section of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineRules {
    /// Decision on accepting a complaint (投诉受理).
    pub complaint_acceptance: u32,
    /// Verification of a report (举报核查).
    pub report_verification: u32,
    /// Acceptance decision for every other kind.
    pub other_acceptance: u32,
    /// A department's handling of a dispatched ticket.
    pub handling: u32,
    /// The most working days extensions may add in total.
    pub max_extension: u32,
    /// Reply to a director's-mailbox message, counted from registration.
    pub mailbox_reply: u32,
    /// Calling the caller back after the department's reply.
    pub callback: u32,
    /// Answering a consultation that could not be answered at once.
    pub later_reply: u32,
    /// Dispatching again after a department returned a ticket or a caller reopened it.
    pub redispatch: u32,
}

impl Default for DeadlineRules {
    fn default() -> Self {
        Self {
            complaint_acceptance: 7,
            report_verification: 15,
            other_acceptance: 7,
            handling: 5,
            max_extension: 10,
            mailbox_reply: 10,
            callback: 1,
            later_reply: 5,
            redispatch: 1,
        }
    }
}

/// A deadline rule was broken by the request (e.g. too long an extension).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeadlineError(pub String);

fn set(t: &mut Ticket, stage: DeadlineStage, d: Deadline) {
    t.stage = Some(stage);
    t.due_date = Some(d.date);
    t.deadline_warning = d.warning;
}

fn clear(t: &mut Ticket) {
    t.stage = None;
    t.due_date = None;
    t.deadline_warning = None;
    t.paused_since = None;
}

/// The first deadline of a new ticket.
pub fn on_create(rules: &DeadlineRules, cal: &Calendar, t: &mut Ticket) {
    let created = t.created_at.date();
    let (stage, days) = match t.kind {
        TicketKind::Complaint => (DeadlineStage::Acceptance, rules.complaint_acceptance),
        TicketKind::Report => (DeadlineStage::Acceptance, rules.report_verification),
        TicketKind::DirectorMailbox => (DeadlineStage::Handling, rules.mailbox_reply),
        _ => (DeadlineStage::Acceptance, rules.other_acceptance),
    };
    set(t, stage, cal.add_working_days(created, days));
}

/// Moves the deadline for `action`, which the workflow has already allowed.
pub fn on_action(
    rules: &DeadlineRules,
    cal: &Calendar,
    t: &mut Ticket,
    action: &TicketAction,
    today: NaiveDate,
) -> Result<(), DeadlineError> {
    use TicketAction as A;
    match action {
        A::Dispatch { .. } => {
            let d = if t.kind == TicketKind::DirectorMailbox {
                cal.add_working_days(t.created_at.date(), rules.mailbox_reply)
            } else {
                cal.add_working_days(today, rules.handling)
            };
            set(t, DeadlineStage::Handling, d);
            t.extended_days = 0;
            t.extension_requested = None;
        }
        A::Return { .. } | A::Reopen { .. } => set(t, DeadlineStage::Acceptance, cal.add_working_days(today, rules.redispatch)),
        A::RequestExtension { working_days, .. } => request_extension(rules, t, *working_days)?,
        A::DecideExtension { approve, .. } => decide_extension(cal, t, *approve)?,
        A::Reply { .. } => set(t, DeadlineStage::Callback, cal.add_working_days(today, rules.callback)),
        A::DeferAnswer { .. } => set(t, DeadlineStage::LaterReply, cal.add_working_days(today, rules.later_reply)),
        A::Callback { .. } | A::Close { .. } | A::Reject { .. } | A::MergeInto { .. } | A::AnswerDirectly { .. } => clear(t),
        A::WaitForCaller { .. } => pause(t, today)?,
        A::ResumeFromCaller => resume(cal, t, today)?,
        A::Accept { .. }
        | A::Acknowledge
        | A::StartHandling
        | A::Supervise { .. }
        | A::Instruct { .. }
        | A::Comment { .. } => {}
    }
    Ok(())
}

fn request_extension(rules: &DeadlineRules, t: &mut Ticket, days: u32) -> Result<(), DeadlineError> {
    let left = rules.max_extension.saturating_sub(t.extended_days);
    if days == 0 || days > left {
        return Err(DeadlineError(format!(
            "延期天数须为1至{left}个工作日 / the extension must be 1 to {left} working days"
        )));
    }
    if t.extension_requested.is_some() {
        return Err(DeadlineError("已有待审批的延期申请 / an extension request is already pending".into()));
    }
    t.extension_requested = Some(days);
    Ok(())
}

fn decide_extension(cal: &Calendar, t: &mut Ticket, approve: bool) -> Result<(), DeadlineError> {
    let days = t
        .extension_requested
        .take()
        .ok_or_else(|| DeadlineError("没有待审批的延期申请 / no extension request is pending".into()))?;
    if approve {
        if let (Some(stage), Some(due)) = (t.stage, t.due_date) {
            set(t, stage, cal.add_working_days(due, days));
            t.extended_days += days;
        }
    }
    Ok(())
}

fn pause(t: &mut Ticket, today: NaiveDate) -> Result<(), DeadlineError> {
    if t.paused_since.is_some() {
        return Err(DeadlineError("工单已在等待来电人 / the ticket is already waiting for the caller".into()));
    }
    t.paused_since = Some(today);
    Ok(())
}

/// Gives back the working days spent waiting for the caller.
fn resume(cal: &Calendar, t: &mut Ticket, today: NaiveDate) -> Result<(), DeadlineError> {
    let since = t
        .paused_since
        .take()
        .ok_or_else(|| DeadlineError("工单未在等待来电人 / the ticket is not waiting for the caller".into()))?;
    let waited = cal.working_days_between(since, today);
    if let (Some(stage), Some(due)) = (t.stage, t.due_date) {
        set(t, stage, cal.add_working_days(due, waited));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{CalendarEntry, DayOverride};
    use rexian_shared::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    /// National Day 2026: 1–7 October off, Saturday 10 October worked (调休).
    fn national_day() -> Calendar {
        let mut entries: Vec<CalendarEntry> = (1..=7)
            .map(|day| CalendarEntry { date: d(2026, 10, day), kind: DayOverride::Holiday, name: "国庆节".into() })
            .collect();
        entries.push(CalendarEntry { date: d(2026, 10, 10), kind: DayOverride::Workday, name: "国庆节调休".into() });
        entries.push(CalendarEntry { date: d(2026, 12, 31), kind: DayOverride::Workday, name: "marks 2026 as covered".into() });
        Calendar::new(entries)
    }

    fn ticket(kind: TicketKind, created: NaiveDate) -> Ticket {
        let at = created.and_hms_opt(10, 0, 0).expect("time");
        let intake = NewTicket::phone(kind, None, "s", "");
        Ticket::from_intake(intake, TicketNo::from_parts(created, 1), at, "t")
    }

    #[test]
    fn complaint_acceptance_spans_national_day_and_counts_the_makeup_saturday() {
        // Registered Tue 29 Sep: working days Wed 30 Sep, Thu 8, Fri 9, Sat 10 (调休), Mon 12,
        // Tue 13, Wed 14 → the 7th is Wed 14 October.
        let cal = national_day();
        let mut t = ticket(TicketKind::Complaint, d(2026, 9, 29));
        on_create(&DeadlineRules::default(), &cal, &mut t);
        assert_eq!(t.stage, Some(DeadlineStage::Acceptance));
        assert_eq!(t.due_date, Some(d(2026, 10, 14)));
        assert_eq!(t.deadline_warning, None);
    }

    #[test]
    fn dispatch_reply_and_callback_deadlines() {
        let cal = national_day();
        let rules = DeadlineRules::default();
        let mut t = ticket(TicketKind::Report, d(2026, 9, 28));
        on_create(&rules, &cal, &mut t);
        let dispatch = TicketAction::Dispatch { lead_department: 2, assisting_departments: vec![], note: String::new() };
        // Dispatched Wed 30 Sep: 8, 9, 10 (Sat, worked), 12, 13 → Tue 13 October.
        on_action(&rules, &cal, &mut t, &dispatch, d(2026, 9, 30)).expect("dispatch");
        assert_eq!((t.stage, t.due_date), (Some(DeadlineStage::Handling), Some(d(2026, 10, 13))));
        // Replied Fri 9 Oct: the callback is due the next working day, the 调休 Saturday.
        on_action(&rules, &cal, &mut t, &TicketAction::Reply { text: "x".into() }, d(2026, 10, 9)).expect("reply");
        assert_eq!((t.stage, t.due_date), (Some(DeadlineStage::Callback), Some(d(2026, 10, 10))));
    }

    #[test]
    fn mailbox_reply_counts_from_registration() {
        let cal = national_day();
        let rules = DeadlineRules::default();
        let mut t = ticket(TicketKind::DirectorMailbox, d(2026, 9, 21));
        on_create(&rules, &cal, &mut t);
        // Mon 21 Sep + 10: 22,23,24,25,28,29,30, 8,9,10 → Sat 10 October (a working day).
        assert_eq!(t.due_date, Some(d(2026, 10, 10)));
        let dispatch = TicketAction::Dispatch { lead_department: 2, assisting_departments: vec![], note: String::new() };
        on_action(&rules, &cal, &mut t, &dispatch, d(2026, 9, 24)).expect("dispatch");
        assert_eq!(t.due_date, Some(d(2026, 10, 10)));
    }

    #[test]
    fn extensions_are_bounded_and_applied_on_approval() {
        let cal = national_day();
        let rules = DeadlineRules::default();
        let mut t = ticket(TicketKind::Complaint, d(2026, 11, 2));
        t.stage = Some(DeadlineStage::Handling);
        t.due_date = Some(d(2026, 11, 6));
        let ask = |days| TicketAction::RequestExtension { working_days: days, reason: "需现场检验".into() };
        assert!(on_action(&rules, &cal, &mut t, &ask(11), d(2026, 11, 3)).is_err());
        on_action(&rules, &cal, &mut t, &ask(5), d(2026, 11, 3)).expect("request");
        assert!(on_action(&rules, &cal, &mut t, &ask(1), d(2026, 11, 3)).is_err(), "one pending request at a time");
        let approve = TicketAction::DecideExtension { approve: true, note: String::new() };
        on_action(&rules, &cal, &mut t, &approve, d(2026, 11, 4)).expect("approve");
        assert_eq!(t.due_date, Some(d(2026, 11, 13)));
        assert_eq!(t.extended_days, 5);
        assert!(on_action(&rules, &cal, &mut t, &ask(6), d(2026, 11, 4)).is_err(), "only 5 days left");
    }

    #[test]
    fn waiting_for_the_caller_pauses_the_deadline() {
        let cal = national_day();
        let rules = DeadlineRules::default();
        let mut t = ticket(TicketKind::Complaint, d(2026, 11, 2));
        t.stage = Some(DeadlineStage::Handling);
        t.due_date = Some(d(2026, 11, 6));
        let wait = TicketAction::WaitForCaller { note: "等待补充材料".into() };
        on_action(&rules, &cal, &mut t, &wait, d(2026, 11, 3)).expect("pause");
        // Paused Tue 3 Nov, resumed Mon 9 Nov: Wed, Thu, Fri, Mon = 4 working days given back.
        on_action(&rules, &cal, &mut t, &TicketAction::ResumeFromCaller, d(2026, 11, 9)).expect("resume");
        assert_eq!(t.due_date, Some(d(2026, 11, 12)));
        assert_eq!(t.paused_since, None);
    }

    #[test]
    fn counting_past_the_calendar_warns() {
        let cal = national_day();
        let mut t = ticket(TicketKind::Report, d(2026, 12, 28));
        on_create(&DeadlineRules::default(), &cal, &mut t);
        assert!(t.deadline_warning.is_some(), "2027 has no calendar data");
    }
}
