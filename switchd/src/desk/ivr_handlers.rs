//! The IVR's desk requests: flows and replacement recordings (administrators), surveys
//! (supervisors and administrators), the callback list (hotline staff).

use base64::Engine;
use rexian_shared::*;

use super::handlers::{require, store_err};
use super::DeskContext;
use crate::cases::Actor;
use crate::ivr::records::{self, IvrError};

type Reply = Result<Response, DeskError>;

/// Recordings larger than this are refused (ten minutes of 16 kHz 16-bit mono).
const MAX_PROMPT_BYTES: usize = 20 * 1024 * 1024;

pub(super) async fn handle(ctx: &DeskContext, actor: &Actor, req: Request) -> Reply {
    let now = ctx.now();
    let store = ctx.cases.store();
    match req {
        Request::ListFlows => {
            require(actor, &[Role::Admin])?;
            Ok(Response::Flows { flows: records::list_flows(store).await.map_err(store_err)? })
        }
        Request::GetFlow { name, version } => {
            require(actor, &[Role::Admin])?;
            let (version, yaml) = records::flow_yaml(store, name.clone(), version).await.map_err(ivr_err)?;
            Ok(Response::Flow { name, version, yaml })
        }
        Request::SaveFlow { yaml } => {
            require(actor, &[Role::Admin])?;
            let prompts = ctx.prompts.clone();
            let exists = move |name: &str| prompts.as_ref().is_some_and(|p| p.has_file(name));
            let (info, flow) = records::save_flow(store, yaml, actor.username.clone(), now, &exists).await.map_err(ivr_err)?;
            tracing::info!(flow = info.name, version = info.version, by = actor.username, "IVR flow saved");
            // Render its fixed texts in the background, so its first caller does not wait.
            if let Some(prompts) = ctx.prompts.clone() {
                crate::ivr::runner::prerender(prompts, flow.static_texts());
            }
            Ok(Response::FlowSaved { flow: info })
        }
        Request::SetPromptAudio { name, wav_base64 } => {
            require(actor, &[Role::Admin])?;
            set_prompt_audio(ctx, &name, &wav_base64).await?;
            tracing::info!(prompt = name, by = actor.username, "prompt recording installed");
            Ok(Response::Ok)
        }
        Request::ListSurveys => {
            require(actor, &[Role::Admin, Role::Supervisor])?;
            Ok(Response::Surveys { surveys: records::surveys(store).await.map_err(store_err)? })
        }
        Request::SaveSurvey { survey } => {
            require(actor, &[Role::Admin, Role::Supervisor])?;
            Ok(Response::Survey { survey: records::save_survey(store, survey, now).await.map_err(ivr_err)? })
        }
        Request::GetSurveyResults { id } => {
            require(actor, &[Role::Admin, Role::Supervisor, Role::Leader])?;
            Ok(Response::SurveyResults { results: records::survey_results(store, id).await.map_err(ivr_err)? })
        }
        Request::ListCallbackRequests { include_done } => {
            require(actor, &[Role::Admin, Role::Supervisor, Role::Agent])?;
            Ok(Response::CallbackRequests { requests: records::callbacks(store, include_done).await.map_err(store_err)? })
        }
        Request::FinishCallbackRequest { id, outcome } => {
            require(actor, &[Role::Admin, Role::Supervisor, Role::Agent])?;
            if outcome.chars().count() > 1000 {
                return Err(DeskError::field("outcome", "回拨结果不能超过1000字 / the outcome must be at most 1000 characters"));
            }
            records::finish_callback(store, id, now, actor.username.clone(), outcome).await.map_err(ivr_err)?;
            Ok(Response::Ok)
        }
        _ => Err(DeskError::new(ErrorCode::Internal, "not an IVR request")),
    }
}

async fn set_prompt_audio(ctx: &DeskContext, name: &str, wav_base64: &str) -> Result<(), DeskError> {
    let Some(prompts) = ctx.prompts.clone() else {
        return Err(DeskError::new(ErrorCode::Internal, "提示音不可用 / prompts unavailable"));
    };
    let wav = base64::engine::general_purpose::STANDARD
        .decode(wav_base64.as_bytes())
        .map_err(|_| DeskError::field("wav_base64", "录音内容不是有效的Base64 / not valid base64"))?;
    if wav.len() > MAX_PROMPT_BYTES {
        return Err(DeskError::new(ErrorCode::TooLarge, format!("录音超过{MAX_PROMPT_BYTES}字节上限 / recording too large")));
    }
    let name = name.to_owned();
    let installed = tokio::task::spawn_blocking(move || prompts.install_file(&name, &wav)).await;
    match installed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ crate::media::prompt::PromptError::NameNotAllowed { .. })) => {
            Err(DeskError::field("name", format!("提示音名称（name）只能含字母、数字、下划线或连字符 / {e}")))
        }
        Ok(Err(e @ crate::media::prompt::PromptError::BadWav { .. })) => {
            Err(DeskError::field("wav_base64", format!("录音须为16位PCM的WAV文件 / {e}")))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot install a prompt");
            Err(DeskError::new(ErrorCode::Internal, "服务器内部错误，已记录 / internal error, logged"))
        }
        Err(e) => Err(DeskError::new(ErrorCode::Internal, e.to_string())),
    }
}

fn ivr_err(e: IvrError) -> DeskError {
    match e {
        IvrError::Flow(f) => DeskError::field("yaml", f.to_string()),
        IvrError::Invalid { field, message } => DeskError::field(field, message),
        IvrError::NotFound(m) => DeskError::new(ErrorCode::NotFound, m),
        IvrError::Store(s) => store_err(s),
    }
}
