//! IVR flow files (`switchd ivr import FILE`, desk `SaveFlow`), parsed by
//! `switchd::ivr::flow::Flow::from_yaml` from arbitrary UTF-8 and validated.
//!
//! * Parsing and validation never panic; errors' `Display` never panics.
//! * A flow that validates round-trips: `to_yaml` parses back to the same flow, which validates.
//! * A valid flow is walked by the interpreter with every key in turn answered: it never panics
//!   and stops issuing commands within a bounded number of steps.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchd::calendar::Calendar;
use switchd::ivr::flow::Flow;
use switchd::ivr::interp::{Command, Input, Interpreter, QueueOutcome, Start};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let flow = match Flow::from_yaml(text) {
        Ok(flow) => flow,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if let Err(e) = flow.validate(&BTreeSet::new(), &|_| true) {
        let _ = e.to_string();
        return;
    }
    let again = Flow::from_yaml(&flow.to_yaml()).expect("a valid flow's YAML parses");
    assert_eq!(again, flow);
    walk(flow);
});

/// Runs the flow with scripted answers: digits cycle through the keys, stores succeed.
fn walk(flow: Flow) {
    let flow = Arc::new(flow);
    let flows = BTreeMap::from([(flow.name.clone(), flow.clone())]);
    let mut it = Interpreter::new(flows, flow, Calendar::default());
    let mut now = Instant::now();
    let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).and_then(|d| d.and_hms_opt(10, 0, 0)).expect("time");
    it.start(now, Start { caller: "13800138000".into(), hotline: "12365".into(), local_time: local });
    let keys = ["1", "2", "", "#", "*", "9", "123456789012"];
    for step in 0..2_000 {
        let Some(command) = it.poll_command() else { return };
        now += Duration::from_millis(500);
        let input = match command {
            Command::Play { .. } => Input::Played,
            Command::Collect { .. } => Input::Digits(keys[step % keys.len()].into()),
            Command::Record { .. } => Input::Recorded { path: "m.wav".into(), seconds: (step % 3) as f64 },
            Command::CreateTicket { .. } => Input::TicketCreated { no: "202611300001".into(), code: "123456".into() },
            Command::LookupTicket { .. } => Input::TicketStatus((step % 2 == 0).then(|| "已受理".into())),
            Command::LoadArticles => Input::Articles(Vec::new()),
            Command::LoadSurvey => Input::Survey(None),
            Command::Queue { .. } => Input::Queue(QueueOutcome::NoAnswer),
            Command::Transfer { .. } => Input::Transferred(false),
            _ => continue,
        };
        it.handle_input(now, input);
    }
}
