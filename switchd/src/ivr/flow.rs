//! IVR flows as data (IVR-1): a flow is a named graph of [`Node`]s, kept in the store as YAML,
//! imported and exported as YAML through the CLI and the desk protocol, and checked by
//! [`Flow::validate`] before it is saved so that a call can never reach a dangling node.
//!
//! ```yaml
//! name: main
//! start: greeting
//! nodes:
//!   greeting:
//!     type: menu
//!     prompt: 局长信箱请按1，人工服务请按0。
//!     choices: { "1": mailbox, "0": agent }
//!     on_fail: agent
//! ```
//!
//! Prompts are Mandarin text (spoken by TTS; `{var}` is replaced by the call's variable) or
//! `{ file: name }`, an administrator's WAV in the prompts folder. Any node's text prompt can
//! also be replaced by a recording named `ivr-<flow>-<node>` ([`override_name`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Why a flow was refused. Messages name the node, Chinese first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The YAML does not parse or has unknown fields.
    #[error("流程格式错误 / flow does not parse: {0}")]
    Syntax(String),
    /// The flow parses but is not usable; `node` is empty for flow-level problems.
    #[error("节点 {node}：{message}")]
    Invalid { node: String, message: String },
}

fn invalid(node: &str, message: impl Into<String>) -> FlowError {
    FlowError::Invalid { node: node.to_owned(), message: message.into() }
}

/// A prompt: text for TTS, or an administrator's recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    File { file: String },
}

impl Prompt {
    /// The text, when it is one.
    pub fn text(&self) -> Option<&str> {
        match self {
            Prompt::Text(t) => Some(t),
            Prompt::File { .. } => None,
        }
    }
}

/// A delivery channel for consultation material the caller asks for (IVR-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Fax,
    Email,
}

impl Delivery {
    pub fn code(self) -> &'static str {
        match self {
            Delivery::Fax => "fax",
            Delivery::Email => "email",
        }
    }
}

fn d_menu_timeout() -> u32 {
    6
}
fn d_retries() -> u32 {
    2
}
fn d_collect_timeout() -> u32 {
    10
}
fn d_one() -> usize {
    1
}
fn d_hash() -> Option<char> {
    Some('#')
}
fn d_record_secs() -> u32 {
    180
}
fn d_ring_secs() -> u32 {
    20
}
fn d_max_wait() -> u32 {
    90
}
fn d_leave_key() -> Option<char> {
    Some('1')
}

/// One step of a flow. Every field naming a node (`next`, `on_fail`, …) must name a node of
/// the same flow; [`Node::Goto`] alone leaves for another flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// Say something, then go on.
    Play { prompt: Prompt, next: String },
    /// Offer choices by key. No key within `timeout_secs`, or a key not offered, replays the
    /// prompt up to `retries` more times, then goes to `on_fail`.
    Menu {
        prompt: Prompt,
        choices: BTreeMap<String, String>,
        #[serde(default = "d_menu_timeout")]
        timeout_secs: u32,
        #[serde(default = "d_retries")]
        retries: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_prompt: Option<Prompt>,
        on_fail: String,
    },
    /// Collect digits into `var` (the terminator ends early and is not kept).
    Collect {
        prompt: Prompt,
        var: String,
        #[serde(default = "d_one")]
        min_digits: usize,
        max_digits: usize,
        #[serde(default = "d_hash")]
        terminator: Option<char>,
        #[serde(default = "d_collect_timeout")]
        timeout_secs: u32,
        #[serde(default = "d_retries")]
        retries: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_prompt: Option<Prompt>,
        next: String,
        on_fail: String,
    },
    /// Record what the caller says (after a beep) into a file whose path goes in `var`;
    /// `#` ends it. A message shorter than a second goes to `on_empty` when given.
    Record {
        prompt: Prompt,
        var: String,
        #[serde(default = "d_record_secs")]
        max_secs: u32,
        next: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_empty: Option<String>,
    },
    /// Ask to keep or redo: 1 goes to `yes`, 2 to `no`; silence keeps.
    Confirm { prompt: Prompt, yes: String, no: String },
    /// Business hours on working days of the calendar (statutory holidays and 调休 included).
    TimeCondition { hours: Vec<String>, open: String, closed: String },
    /// Set `var` to `value` (with `{var}` replaced).
    Set { var: String, value: String, next: String },
    /// Add one to the number in `var` (missing counts as 0).
    Count { var: String, next: String },
    /// Go by the value of `var`.
    Branch { var: String, cases: BTreeMap<String, String>, default: String },
    /// Continue in another flow, at its start or at `node`.
    Goto {
        flow: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// Hand the caller to a person: ring `users` (or every logged-in agent with `all_agents`)
    /// one after another for `ring_secs` each while the caller hears `hold_prompt`; a caller
    /// who presses `leave_key` goes to `on_leave` (to leave a message, IVR-4), and one nobody
    /// answered within `max_wait_secs` goes to `on_fail`. The call ends when the person and
    /// the caller are done.
    Queue {
        /// An ACD queue (`[[acd.queues]]`): callers wait for the ACD to offer them to a
        /// logged-in, ready agent. Without it, `users` (or `all_agents`) ring in turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        #[serde(default)]
        users: Vec<String>,
        #[serde(default)]
        all_agents: bool,
        #[serde(default = "d_ring_secs")]
        ring_secs: u32,
        #[serde(default = "d_max_wait")]
        max_wait_secs: u32,
        #[serde(default = "d_leave_key")]
        leave_key: Option<char>,
        /// In an ACD queue: the key that asks to be called back keeping one's place (ACD-4);
        /// the caller confirms the number and hangs up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_key: Option<char>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold_prompt: Option<Prompt>,
        on_fail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_leave: Option<String>,
    },
    /// Bridge the caller to an outside number through the outbound trunk.
    Transfer { number: String, on_fail: String },
    /// Make a ticket of what was recorded (IVR-3, IVR-5). `kind` is a ticket kind code or a
    /// `{var}` holding one; `callback` and `reply` name variables with the number to call back
    /// and `yes`/`no`. Sets `ticket_no` and `ticket_code`.
    CreateTicket {
        kind: String,
        recording: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply: Option<String>,
        next: String,
        on_error: String,
    },
    /// Look a ticket up by the number in `number` and the code in `code` (an empty code is
    /// accepted from the ticket's own phone number) and put what may be said into `status`.
    LookupTicket { number: String, code: String, found: String, not_found: String },
    /// The consultation menus, built from the published articles marked for the IVR (IVR-7).
    Consultation { next: String },
    /// The active keypad survey (IVR-8).
    Survey { next: String },
    /// The caller rates the call they just had, 1 (非常满意) to 5 (非常不满意); kept on the
    /// call record and noted on its tickets (IVR-8, 人工转自动).
    Satisfaction { prompt: Prompt, next: String },
    /// Put the caller's number on the callback list (IVR-9).
    LogCallback { reason: String, next: String },
    /// Say goodbye (optionally) and hang up.
    Hangup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Prompt>,
    },
}

/// A flow as stored and exchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub start: String,
    pub nodes: BTreeMap<String, Node>,
}

/// The name of the recording that replaces `node`'s text prompt in `flow`.
pub fn override_name(flow: &str, node: &str) -> String {
    format!("ivr-{flow}-{node}")
}

/// Flow and node names: what may appear in a prompt file name.
fn is_name(s: &str) -> bool {
    (1..=40).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

const KEYS: &str = "0123456789*#";

pub use crate::calendar::parse_hours;

impl Flow {
    pub fn from_yaml(text: &str) -> Result<Flow, FlowError> {
        serde_yaml_ng::from_str(text).map_err(|e| FlowError::Syntax(e.to_string()))
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    /// Checks the flow on its own and its `goto`s against `other_flows` (the names of the
    /// flows it may go to; its own name counts too). `prompt_exists` says whether a prompt
    /// file is there.
    pub fn validate(&self, other_flows: &BTreeSet<String>, prompt_exists: &dyn Fn(&str) -> bool) -> Result<(), FlowError> {
        if !is_name(&self.name) {
            return Err(invalid("", "流程名须为1至40位字母、数字、下划线或连字符 / flow name: 1–40 of A–Z a–z 0–9 _ -"));
        }
        if self.nodes.is_empty() {
            return Err(invalid("", "流程没有节点 / the flow has no nodes"));
        }
        if !self.nodes.contains_key(&self.start) {
            return Err(invalid(&self.start, "起始节点不存在 / the start node does not exist"));
        }
        for (name, node) in &self.nodes {
            if !is_name(name) {
                return Err(invalid(name, "节点名须为1至40位字母、数字、下划线或连字符 / node name: 1–40 of A–Z a–z 0–9 _ -"));
            }
            self.check_node(name, node, other_flows, prompt_exists)?;
        }
        Ok(())
    }

    fn check_node(&self, name: &str, node: &Node, flows: &BTreeSet<String>, prompt_exists: &dyn Fn(&str) -> bool) -> Result<(), FlowError> {
        for target in targets(node) {
            if !self.nodes.contains_key(target) {
                return Err(invalid(name, format!("指向不存在的节点 {target} / leads to missing node {target}")));
            }
        }
        for prompt in prompts(node) {
            check_prompt(name, prompt, prompt_exists)?;
        }
        match node {
            Node::Menu { choices, .. } => check_choices(name, choices),
            Node::Collect { min_digits, max_digits, .. } if *min_digits > *max_digits || *max_digits == 0 || *max_digits > 32 => {
                Err(invalid(name, "位数范围无效（1至32位）/ digit counts must be 1..=32, min ≤ max"))
            }
            Node::TimeCondition { hours, .. } => check_hours(name, hours),
            Node::Goto { flow, node } => check_goto(name, &self.name, flow, node.as_deref(), flows),
            Node::CreateTicket { kind, .. } if !kind.contains('{') && rexian_shared::TicketKind::from_code(kind).is_none() => {
                Err(invalid(name, format!("工单类别 {kind} 无效 / unknown ticket kind {kind}")))
            }
            Node::Queue { leave_key, callback_key: Some(key), .. } if !KEYS.contains(*key) || *leave_key == Some(*key) => {
                Err(invalid(name, "回呼键（callback_key）须为一个按键且不同于留言键 / callback_key must be one key other than leave_key"))
            }
            Node::Queue { queue: None, callback_key: Some(_), .. } => {
                Err(invalid(name, "回呼键只用于排队队列（queue）/ callback_key needs an ACD queue"))
            }
            Node::Record { max_secs, .. } if *max_secs == 0 || *max_secs > 3600 => {
                Err(invalid(name, "录音时长须为1至3600秒 / max_secs must be 1..=3600"))
            }
            _ => Ok(()),
        }
    }

    /// Every text prompt without variables: what can be rendered ahead of time.
    pub fn static_texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = self
            .nodes
            .values()
            .flat_map(prompts)
            .filter_map(Prompt::text)
            .filter(|t| !t.contains('{'))
            .map(str::to_owned)
            .collect();
        texts.sort();
        texts.dedup();
        texts
    }
}

fn check_prompt(node: &str, prompt: &Prompt, prompt_exists: &dyn Fn(&str) -> bool) -> Result<(), FlowError> {
    match prompt {
        Prompt::Text(t) if t.trim().is_empty() => Err(invalid(node, "提示语为空 / empty prompt")),
        Prompt::Text(t) if t.len() > 4000 => Err(invalid(node, "提示语过长 / prompt too long")),
        Prompt::File { file } if !prompt_exists(file) => {
            Err(invalid(node, format!("提示音文件 {file} 不存在 / prompt file {file} not found")))
        }
        _ => Ok(()),
    }
}

fn check_choices(node: &str, choices: &BTreeMap<String, String>) -> Result<(), FlowError> {
    if choices.is_empty() {
        return Err(invalid(node, "菜单没有选项 / the menu has no choices"));
    }
    for key in choices.keys() {
        if key.chars().count() != 1 || !KEYS.contains(key.as_str()) {
            return Err(invalid(node, format!("按键 {key} 无效（应为0-9、*或#）/ key {key} must be one of 0-9 * #")));
        }
    }
    Ok(())
}

fn check_hours(node: &str, hours: &[String]) -> Result<(), FlowError> {
    match hours.iter().find(|h| parse_hours(h).is_none()) {
        Some(bad) => Err(invalid(node, format!("时段 {bad} 无效，应如 08:30-17:30 / bad hours {bad}, e.g. 08:30-17:30"))),
        None => Ok(()),
    }
}

fn check_goto(node: &str, own: &str, flow: &str, target: Option<&str>, flows: &BTreeSet<String>) -> Result<(), FlowError> {
    if flow != own && !flows.contains(flow) {
        return Err(invalid(node, format!("跳转的流程 {flow} 不存在 / goes to missing flow {flow}")));
    }
    if target.is_some_and(|t| !is_name(t)) {
        return Err(invalid(node, "跳转的节点名无效 / bad target node name"));
    }
    Ok(())
}

/// The nodes `node` may lead to within its flow.
fn targets(node: &Node) -> Vec<&str> {
    match node {
        Node::Play { next, .. }
        | Node::Set { next, .. }
        | Node::Count { next, .. }
        | Node::Consultation { next }
        | Node::Survey { next }
        | Node::Satisfaction { next, .. }
        | Node::LogCallback { next, .. } => vec![next],
        Node::Menu { choices, on_fail, .. } => choices.values().map(String::as_str).chain([on_fail.as_str()]).collect(),
        Node::Collect { next, on_fail, .. } => vec![next, on_fail],
        Node::Record { next, on_empty, .. } => [Some(next.as_str()), on_empty.as_deref()].into_iter().flatten().collect(),
        Node::Confirm { yes, no, .. } => vec![yes, no],
        Node::TimeCondition { open, closed, .. } => vec![open, closed],
        Node::Branch { cases, default, .. } => cases.values().map(String::as_str).chain([default.as_str()]).collect(),
        Node::Queue { on_fail, on_leave, .. } => [Some(on_fail.as_str()), on_leave.as_deref()].into_iter().flatten().collect(),
        Node::Transfer { on_fail, .. } => vec![on_fail],
        Node::CreateTicket { next, on_error, .. } => vec![next, on_error],
        Node::LookupTicket { found, not_found, .. } => vec![found, not_found],
        Node::Goto { .. } | Node::Hangup { .. } => vec![],
    }
}

/// The prompts `node` speaks.
fn prompts(node: &Node) -> Vec<&Prompt> {
    match node {
        Node::Play { prompt, .. } | Node::Record { prompt, .. } | Node::Confirm { prompt, .. } | Node::Satisfaction { prompt, .. } => {
            vec![prompt]
        }
        Node::Menu { prompt, invalid_prompt, .. } | Node::Collect { prompt, invalid_prompt, .. } => {
            [Some(prompt), invalid_prompt.as_ref()].into_iter().flatten().collect()
        }
        Node::Queue { hold_prompt: p, .. } | Node::Hangup { prompt: p } => p.iter().collect(),
        _ => vec![],
    }
}

/// The 12365 flow shipped with switchd (editable: it is stored like any other).
pub const DEFAULT_FLOW_YAML: &str = include_str!("default_12365.yaml");
/// The post-call satisfaction flow agents hand callers to (人工转自动).
pub const SATISFACTION_FLOW_YAML: &str = include_str!("satisfaction.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &str) -> bool {
        false
    }

    #[test]
    fn the_shipped_flows_are_valid_and_round_trip() {
        for yaml in [DEFAULT_FLOW_YAML, SATISFACTION_FLOW_YAML] {
            let flow = Flow::from_yaml(yaml).expect("parses");
            flow.validate(&BTreeSet::new(), &no_files).expect("valid");
            assert_eq!(Flow::from_yaml(&flow.to_yaml()).expect("again"), flow);
        }
        let flow = Flow::from_yaml(DEFAULT_FLOW_YAML).expect("parses");
        assert!(flow.static_texts().iter().any(|t| t.contains("局长信箱")));
    }

    #[test]
    fn a_dangling_target_is_refused_naming_the_node() {
        let mut flow = Flow::from_yaml(DEFAULT_FLOW_YAML).expect("parses");
        if let Some(Node::Menu { choices, .. }) = flow.nodes.get_mut("greeting") {
            choices.insert("7".into(), "nowhere".into());
        }
        let e = flow.validate(&BTreeSet::new(), &no_files).expect_err("dangling");
        assert_eq!(e, invalid("greeting", "指向不存在的节点 nowhere / leads to missing node nowhere"));
        assert!(e.to_string().starts_with("节点 greeting："), "{e}");
    }

    #[test]
    fn bad_keys_hours_files_kinds_and_gotos_are_refused() {
        let base = "name: t\nstart: a\nnodes:\n  end: { type: hangup }\n  a:\n";
        let cases = [
            ("    { type: menu, prompt: 请选择, choices: { \"12\": end }, on_fail: end }", "按键 12"),
            ("    { type: time_condition, hours: [\"17:30-08:30\"], open: end, closed: end }", "时段"),
            ("    { type: play, prompt: { file: welcome }, next: end }", "welcome"),
            ("    { type: create_ticket, kind: gossip, recording: m, next: end, on_error: end }", "gossip"),
            ("    { type: goto, flow: nowhere }", "nowhere"),
            ("    { type: play, prompt: \"  \", next: end }", "为空"),
            ("    { type: collect, prompt: 输入, var: x, min_digits: 4, max_digits: 2, next: end, on_fail: end }", "位数"),
            ("    { type: queue, queue: hotline, callback_key: \"1\", on_fail: end }", "回呼键"),
            ("    { type: queue, users: [agent1], callback_key: \"2\", on_fail: end }", "回呼键"),
        ];
        for (node, needle) in cases {
            let flow = Flow::from_yaml(&format!("{base}{node}\n")).expect("parses");
            let e = flow.validate(&BTreeSet::new(), &no_files).expect_err(node);
            assert!(e.to_string().contains(needle) && e.to_string().contains("节点 a"), "{node}: {e}");
        }
    }

    #[test]
    fn unknown_fields_and_types_do_not_parse() {
        for yaml in ["name: t\nstart: a\nnodes:\n  a: { type: dance }\n", "name: t\nstart: a\ncolour: red\nnodes: {}\n"] {
            assert!(matches!(Flow::from_yaml(yaml), Err(FlowError::Syntax(_))), "{yaml}");
        }
    }

    #[test]
    fn hours_parse() {
        let (a, b) = parse_hours("08:30-17:30").expect("range");
        assert_eq!((a.to_string(), b.to_string()), ("08:30:00".into(), "17:30:00".into()));
        assert!(parse_hours("8-17").is_none() && parse_hours("18:00-09:00").is_none());
    }
}
