//! The ticket workflow (TKT-4) as an explicit state machine: which action is allowed in which
//! state, the state it leads to, and who may take it. Pure: no store, no clock.
//!
//! ```text
//! registered ─accept→ accepted ─dispatch→ dispatched ─acknowledge→ acknowledged ─start→ in_progress
//!     │  └─reject→ not_accepted          ▲   │ └────return────→ returned ─dispatch─┘        │
//!     ├─answer_directly→ closed          │   └──────────── reply ←───────────────────────────┘
//!     ├─defer_answer→ later_reply ───────┘                   ↓
//!     └─merge_into→ merged        closed ←close─ called_back ←callback─ replied
//!                                   └──────reopen──────→ accepted
//! ```

use rexian_shared::{Role, TicketAction, TicketKind, TicketState};
use TicketState::*;

/// How the acting user stands to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// A handler of the lead department.
    LeadDepartment,
    /// A handler of an assisting department.
    AssistingDepartment,
    /// No department relation (hotline staff, leaders, administrators).
    Hotline,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The action is not allowed in the ticket's current state.
    #[error("工单当前状态为“{}”，不能执行“{action}” / action {action} is not allowed in state {}", .state.zh(), .state.code())]
    InvalidTransition { state: TicketState, action: &'static str },
    /// The action does not apply to this kind of ticket.
    #[error("“{}”类工单不能执行“{action}” / action {action} does not apply to {} tickets", .kind.zh(), .kind.code())]
    WrongKind { kind: TicketKind, action: &'static str },
    /// The user's role or department may not take the action.
    #[error("角色“{}”无权执行“{action}” / role {} may not {action}", .role.zh(), .role.code())]
    Forbidden { role: Role, action: &'static str },
}

/// The state `action` leads to from `state`; `Ok(state)` for actions that change no state.
pub fn next_state(state: TicketState, kind: TicketKind, action: &TicketAction) -> Result<TicketState, WorkflowError> {
    use TicketAction as A;
    let name = action.code();
    let invalid = || WorkflowError::InvalidTransition { state, action: name };
    let direct_kinds = matches!(kind, TicketKind::Consultation | TicketKind::Suggestion | TicketKind::Praise);
    let next = match (action, state) {
        (A::Accept { .. }, Registered) => Accepted,
        (A::Reject { .. }, Registered | Returned) => NotAccepted,
        (A::Dispatch { .. }, Registered | Accepted | Returned | LaterReply) => Dispatched,
        (A::Acknowledge, Dispatched) => Acknowledged,
        (A::StartHandling, Acknowledged) => InProgress,
        (A::Reply { .. }, Acknowledged | InProgress) => Replied,
        (A::Return { .. }, Dispatched | Acknowledged | InProgress) => Returned,
        (A::RequestExtension { .. } | A::DecideExtension { .. }, Dispatched | Acknowledged | InProgress) => state,
        (A::Callback { .. }, Replied) => CalledBack,
        (A::Close { .. }, Replied | CalledBack) => Closed,
        (A::Reopen { .. }, CalledBack | Closed) => Accepted,
        (A::AnswerDirectly { .. } | A::DeferAnswer { .. }, _) if !direct_kinds => {
            return Err(WorkflowError::WrongKind { kind, action: name })
        }
        (A::AnswerDirectly { .. }, Registered | Accepted | LaterReply) => Closed,
        (A::DeferAnswer { .. }, Registered | Accepted) => LaterReply,
        (A::WaitForCaller { .. } | A::ResumeFromCaller, s) if !s.is_final() && s != Replied && s != CalledBack => s,
        (A::Supervise { .. } | A::Instruct { .. }, s) if !s.is_final() => s,
        (A::Comment { .. }, s) => s,
        (A::MergeInto { .. }, Registered | Accepted) => Merged,
        _ => return Err(invalid()),
    };
    Ok(next)
}

/// Whether a user of `role` standing in `relation` to the ticket may take `action`.
pub fn permitted(role: Role, relation: Relation, action: &TicketAction) -> bool {
    use TicketAction as A;
    let hotline_staff = matches!(role, Role::Agent | Role::Supervisor | Role::Admin);
    let lead_handler = role == Role::Handler && relation == Relation::LeadDepartment;
    match action {
        A::Accept { .. }
        | A::Reject { .. }
        | A::Dispatch { .. }
        | A::Callback { .. }
        | A::Close { .. }
        | A::Reopen { .. }
        | A::AnswerDirectly { .. }
        | A::DeferAnswer { .. }
        | A::MergeInto { .. } => hotline_staff,
        A::Acknowledge | A::StartHandling | A::Reply { .. } | A::Return { .. } | A::RequestExtension { .. } => lead_handler,
        A::DecideExtension { .. } => matches!(role, Role::Supervisor | Role::Admin | Role::Leader),
        A::WaitForCaller { .. } | A::ResumeFromCaller => hotline_staff || lead_handler,
        A::Supervise { .. } => matches!(role, Role::Supervisor | Role::Leader | Role::Admin),
        A::Instruct { .. } => matches!(role, Role::Leader | Role::Supervisor),
        A::Comment { .. } => true,
    }
}

/// Checks both rules; the permission is checked first so a refused user learns nothing of the state.
pub fn check(
    role: Role,
    relation: Relation,
    state: TicketState,
    kind: TicketKind,
    action: &TicketAction,
) -> Result<TicketState, WorkflowError> {
    if !permitted(role, relation, action) {
        return Err(WorkflowError::Forbidden { role, action: action.code() });
    }
    next_state(state, kind, action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rexian_shared::{RejectReason, Satisfaction};

    fn dispatch() -> TicketAction {
        TicketAction::Dispatch { lead_department: 1, assisting_departments: vec![], note: String::new() }
    }

    #[test]
    fn the_main_path_reaches_closed() {
        let path = [
            (TicketAction::Accept { note: String::new() }, Role::Agent, Relation::Hotline, Accepted),
            (dispatch(), Role::Agent, Relation::Hotline, Dispatched),
            (TicketAction::Acknowledge, Role::Handler, Relation::LeadDepartment, Acknowledged),
            (TicketAction::StartHandling, Role::Handler, Relation::LeadDepartment, InProgress),
            (TicketAction::Reply { text: "已处理".into() }, Role::Handler, Relation::LeadDepartment, Replied),
            (
                TicketAction::Callback { satisfaction: Satisfaction::Satisfied, note: String::new() },
                Role::Agent,
                Relation::Hotline,
                CalledBack,
            ),
            (TicketAction::Close { note: String::new() }, Role::Agent, Relation::Hotline, Closed),
        ];
        let mut state = Registered;
        for (action, role, rel, expect) in path {
            state = check(role, rel, state, TicketKind::Complaint, &action).expect("allowed");
            assert_eq!(state, expect);
        }
    }

    #[test]
    fn invalid_transition_names_the_state() {
        let err = next_state(Registered, TicketKind::Complaint, &TicketAction::Acknowledge).expect_err("invalid");
        assert!(err.to_string().contains("已登记"), "{err}");
        assert!(err.to_string().contains("registered"), "{err}");
    }

    #[test]
    fn only_the_lead_department_replies() {
        let reply = TicketAction::Reply { text: "x".into() };
        assert!(permitted(Role::Handler, Relation::LeadDepartment, &reply));
        assert!(!permitted(Role::Handler, Relation::AssistingDepartment, &reply));
        assert!(!permitted(Role::Agent, Relation::Hotline, &reply));
        assert!(!permitted(Role::Handler, Relation::LeadDepartment, &dispatch()));
    }

    #[test]
    fn direct_answers_only_for_consultations_and_the_like() {
        let answer = TicketAction::AnswerDirectly { answer: "a".into(), cited_articles: vec![], cited_tickets: vec![] };
        assert_eq!(next_state(Registered, TicketKind::Consultation, &answer), Ok(Closed));
        assert!(matches!(
            next_state(Registered, TicketKind::Complaint, &answer),
            Err(WorkflowError::WrongKind { .. })
        ));
        let defer = TicketAction::DeferAnswer { contact_note: "下午回电".into() };
        assert_eq!(next_state(Registered, TicketKind::Consultation, &defer), Ok(LaterReply));
        assert_eq!(next_state(LaterReply, TicketKind::Consultation, &dispatch()), Ok(Dispatched));
    }

    #[test]
    fn returns_reopen_and_rejection() {
        let ret = TicketAction::Return { reason: "不属本部门".into() };
        assert_eq!(next_state(Acknowledged, TicketKind::Complaint, &ret), Ok(Returned));
        assert_eq!(next_state(Returned, TicketKind::Complaint, &dispatch()), Ok(Dispatched));
        let reopen = TicketAction::Reopen { reason: "不满意".into() };
        assert_eq!(next_state(CalledBack, TicketKind::Complaint, &reopen), Ok(Accepted));
        let reject = TicketAction::Reject { reason: RejectReason::OutOfScope, note: String::new() };
        assert_eq!(next_state(Registered, TicketKind::Report, &reject), Ok(NotAccepted));
        assert!(next_state(Closed, TicketKind::Report, &reject).is_err());
    }

    #[test]
    fn every_action_is_refused_somewhere_and_final_states_only_take_comments() {
        for state in [Closed, Merged, NotAccepted] {
            assert!(next_state(state, TicketKind::Complaint, &TicketAction::Supervise { note: String::new() }).is_err());
            assert_eq!(next_state(state, TicketKind::Complaint, &TicketAction::Comment { text: "x".into() }), Ok(state));
        }
    }
}
