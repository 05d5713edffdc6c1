//! What the IVR keeps in the store, as the rest of switchd uses it: flow versions (saved only
//! when valid), surveys and their counted results, the callback list and call trails.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDateTime;
use rexian_shared::{CallbackRequest, FlowInfo, Survey, SurveyResults, SurveyScale};

use super::flow::{Flow, FlowError, DEFAULT_FLOW_YAML, SATISFACTION_FLOW_YAML};
use crate::store::{Store, StoreError, TrailRow};

/// The flow a hotline call starts in.
pub const ENTRY_FLOW: &str = "main";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IvrError {
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// A survey or request field is not acceptable; `field` names it.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The latest version of every flow that still parses (one that does not is logged and left
/// out: it was valid when saved, so only a newer switchd could have made it so).
pub async fn load_flows(store: &Store) -> Result<BTreeMap<String, Arc<Flow>>, StoreError> {
    let rows = store.read(|db| db.latest_flows()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(info, yaml)| match Flow::from_yaml(&yaml) {
            Ok(flow) => Some((info.name, Arc::new(flow))),
            Err(e) => {
                tracing::warn!(flow = info.name, version = info.version, error = %e, "stored flow no longer parses");
                None
            }
        })
        .collect())
}

pub async fn list_flows(store: &Store) -> Result<Vec<FlowInfo>, StoreError> {
    Ok(store.read(|db| db.latest_flows()).await?.into_iter().map(|(info, _)| info).collect())
}

/// The YAML of a flow's latest version, or of `version`.
pub async fn flow_yaml(store: &Store, name: String, version: Option<i64>) -> Result<(i64, String), IvrError> {
    let found = store.read(move |db| db.flow_yaml(&name, version)).await?;
    found.ok_or_else(|| IvrError::NotFound("流程不存在 / no such flow".into()))
}

/// Parses, validates and saves `yaml` as the next version of its flow; it applies from the
/// next call. `prompt_exists` tells whether a prompt file is there. Returns what was saved and
/// the flow itself.
pub async fn save_flow(
    store: &Store,
    yaml: String,
    by: String,
    at: NaiveDateTime,
    prompt_exists: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(FlowInfo, Flow), IvrError> {
    let flow = Flow::from_yaml(&yaml)?;
    let names: BTreeSet<String> = list_flows(store).await?.into_iter().map(|f| f.name).collect();
    flow.validate(&names, prompt_exists)?;
    let (name, description) = (flow.name.clone(), flow.description.clone());
    let saved_by = by.clone();
    let version = store.write(move |db| db.save_flow(&name, &description, &yaml, at, &by)).await?;
    let info = FlowInfo { name: flow.name.clone(), version, description: flow.description.clone(), saved_at: at, saved_by };
    Ok((info, flow))
}

/// Stores each shipped flow (the 12365 main flow, the post-call satisfaction flow) that does
/// not exist yet (first start, or a data directory from before the IVR).
pub async fn seed_default_flows(store: &Store, at: NaiveDateTime) -> Result<(), IvrError> {
    for yaml in [DEFAULT_FLOW_YAML, SATISFACTION_FLOW_YAML] {
        let name = Flow::from_yaml(yaml)?.name;
        let lookup = name.clone();
        if store.read(move |db| db.flow_yaml(&lookup, None)).await?.is_some() {
            continue;
        }
        save_flow(store, yaml.to_owned(), "system".into(), at, &|_| true).await?;
        tracing::info!(flow = name, "IVR: shipped flow installed");
    }
    Ok(())
}

fn bad(field: &'static str, message: &str) -> IvrError {
    IvrError::Invalid { field, message: message.to_owned() }
}

/// Checks and saves a survey; returns it with its id.
pub async fn save_survey(store: &Store, mut survey: Survey, at: NaiveDateTime) -> Result<Survey, IvrError> {
    let title = survey.title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 100 {
        return Err(bad("title", "调查标题（title）应为1至100个字 / title: 1 to 100 characters"));
    }
    if survey.questions.is_empty() || survey.questions.len() > 20 {
        return Err(bad("questions", "调查问题（questions）应为1至20个 / 1 to 20 questions"));
    }
    if survey.questions.iter().any(|q| q.text.trim().is_empty() || q.text.chars().count() > 200) {
        return Err(bad("questions.text", "问题内容（questions.text）应为1至200个字 / question text: 1 to 200 characters"));
    }
    survey.title = title;
    let s = survey.clone();
    survey.id = Some(store.write(move |db| db.save_survey(&s, at)).await?);
    Ok(survey)
}

pub async fn surveys(store: &Store) -> Result<Vec<Survey>, StoreError> {
    store.read(|db| db.surveys()).await
}

/// The survey the IVR asks now, if one is active.
pub async fn active_survey(store: &Store) -> Result<Option<Survey>, StoreError> {
    Ok(surveys(store).await?.into_iter().find(|s| s.active))
}

/// A survey's answers counted per question and key.
pub async fn survey_results(store: &Store, id: i64) -> Result<SurveyResults, IvrError> {
    let survey = surveys(store).await?.into_iter().find(|s| s.id == Some(id));
    let survey = survey.ok_or_else(|| IvrError::NotFound("调查不存在 / no such survey".into()))?;
    let (rows, respondents) = store.read(move |db| db.survey_counts(id)).await?;
    let mut counts: Vec<Vec<u64>> = survey
        .questions
        .iter()
        .map(|q| vec![0; if q.scale == SurveyScale::OneToFive { 5 } else { 2 }])
        .collect();
    for (question, answer, n) in rows {
        if let Some(slot) = counts.get_mut(question).and_then(|c| c.get_mut(usize::from(answer).wrapping_sub(1))) {
            *slot += n;
        }
    }
    Ok(SurveyResults { survey, respondents, counts })
}

pub async fn add_callback(store: &Store, request: CallbackRequest, call: Option<i64>) -> Result<i64, StoreError> {
    store.write(move |db| db.add_callback_request(&request, call)).await
}

pub async fn callbacks(store: &Store, include_done: bool) -> Result<Vec<CallbackRequest>, StoreError> {
    store.read(move |db| db.callback_requests(include_done, 500)).await
}

pub async fn finish_callback(store: &Store, id: i64, at: NaiveDateTime, by: String, outcome: String) -> Result<(), IvrError> {
    if store.write(move |db| db.finish_callback_request(id, at, &by, &outcome)).await? {
        Ok(())
    } else {
        Err(IvrError::NotFound("回访请求不存在或已处理 / no such open callback request".into()))
    }
}

pub async fn save_trail(store: &Store, call: i64, trail: Vec<TrailRow>) -> Result<(), StoreError> {
    store.write(move |db| db.save_ivr_trail(call, &trail)).await
}

pub async fn trail(store: &Store, call: i64) -> Result<Vec<TrailRow>, StoreError> {
    store.read(move |db| db.ivr_trail(call)).await
}
