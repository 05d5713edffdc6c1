//! The IVR's tables (migration 3): flow versions, surveys and answers, the callback list and
//! each call's IVR trail.

use super::db::{code, Db};
use super::StoreResult;
use chrono::NaiveDateTime;
use rexian_shared::{CallbackRequest, FlowInfo, Survey, SurveyQuestion};
use rusqlite::{params, OptionalExtension};

/// One step of a call's IVR trail as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrailRow {
    pub after_ms: u64,
    pub flow: String,
    pub node: String,
    pub note: String,
}

/// `(question, answer, count)` rows of a survey.
pub type AnswerCounts = Vec<(usize, u8, u64)>;

impl Db<'_> {
    /// Saves `yaml` as the next version of flow `name`; returns the version.
    pub fn save_flow(&self, name: &str, description: &str, yaml: &str, at: NaiveDateTime, by: &str) -> StoreResult<i64> {
        let version: i64 = self.conn.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM ivr_flows WHERE name = ?1", [name], |r| r.get(0))?;
        self.conn.execute(
            "INSERT INTO ivr_flows (name, version, description, yaml, saved_at, saved_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, version, description, yaml, at, by],
        )?;
        Ok(version)
    }

    /// The latest version of every flow: `(info, yaml)`.
    pub fn latest_flows(&self) -> StoreResult<Vec<(FlowInfo, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, version, description, saved_at, saved_by, yaml FROM ivr_flows f
             WHERE version = (SELECT MAX(version) FROM ivr_flows g WHERE g.name = f.name) ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((FlowInfo { name: r.get(0)?, version: r.get(1)?, description: r.get(2)?, saved_at: r.get(3)?, saved_by: r.get(4)? }, r.get(5)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One version of a flow (the latest when `version` is `None`).
    pub fn flow_yaml(&self, name: &str, version: Option<i64>) -> StoreResult<Option<(i64, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT version, yaml FROM ivr_flows WHERE name = ?1 AND (?2 IS NULL OR version = ?2) ORDER BY version DESC LIMIT 1",
                params![name, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Saves a survey; making one active deactivates the others. Returns its id.
    pub fn save_survey(&self, survey: &Survey, at: NaiveDateTime) -> StoreResult<i64> {
        let questions = serde_json::to_string(&survey.questions).map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
        if survey.active {
            self.conn.execute("UPDATE surveys SET active = 0 WHERE active = 1", [])?;
        }
        match survey.id {
            Some(id) => {
                let n = self.conn.execute(
                    "UPDATE surveys SET title = ?2, active = ?3, questions = ?4, saved_at = ?5 WHERE id = ?1",
                    params![id, survey.title, survey.active, questions, at],
                )?;
                if n == 0 {
                    return Err(super::StoreError::Corrupt(format!("no survey {id}")));
                }
                Ok(id)
            }
            None => {
                self.conn.execute(
                    "INSERT INTO surveys (title, active, questions, saved_at) VALUES (?1, ?2, ?3, ?4)",
                    params![survey.title, survey.active, questions, at],
                )?;
                Ok(self.conn.last_insert_rowid())
            }
        }
    }

    pub fn surveys(&self) -> StoreResult<Vec<Survey>> {
        let mut stmt = self.conn.prepare_cached("SELECT id, title, active, questions FROM surveys ORDER BY id DESC")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, String>(3)?)))?;
        rows.map(|row| {
            let (id, title, active, questions) = row?;
            let questions: Vec<SurveyQuestion> =
                serde_json::from_str(&questions).map_err(|e| super::StoreError::Corrupt(format!("survey {id}: {e}")))?;
            Ok(Survey { id: Some(id), title, active, questions })
        })
        .collect()
    }

    pub fn save_survey_answer(&self, survey: i64, question: usize, answer: u8, call: Option<i64>, at: NaiveDateTime) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO survey_answers (survey_id, question, answer, call_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![survey, question as i64, answer, call, at],
        )?;
        Ok(())
    }

    /// `(question, answer, count)` of a survey, and how many calls answered anything.
    pub fn survey_counts(&self, survey: i64) -> StoreResult<(AnswerCounts, u64)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT question, answer, COUNT(*) FROM survey_answers WHERE survey_id = ?1 GROUP BY question, answer",
        )?;
        let rows = stmt.query_map([survey], |r| Ok((r.get::<_, i64>(0)? as usize, r.get::<_, u8>(1)?, r.get::<_, i64>(2)? as u64)))?;
        let counts = rows.collect::<Result<_, _>>()?;
        let respondents: i64 = self.conn.query_row(
            "SELECT COUNT(DISTINCT COALESCE(call_id, -id)) FROM survey_answers WHERE survey_id = ?1",
            [survey],
            |r| r.get(0),
        )?;
        Ok((counts, respondents as u64))
    }

    pub fn add_callback_request(&self, req: &CallbackRequest, call: Option<i64>) -> StoreResult<i64> {
        self.conn.execute(
            "INSERT INTO callback_requests (at, phone, reason, address, article_id, call_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![req.at, req.phone, req.reason, req.address, req.article_id, call],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Open requests oldest first, then (with `include_done`) the done ones, newest first.
    pub fn callback_requests(&self, include_done: bool, limit: u32) -> StoreResult<Vec<CallbackRequest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, phone, reason, address, article_id, done_at IS NOT NULL, outcome FROM callback_requests
             WHERE ?1 OR done_at IS NULL ORDER BY done_at IS NOT NULL, CASE WHEN done_at IS NULL THEN at END, at DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![include_done, limit], |r| {
            Ok(CallbackRequest {
                id: r.get(0)?,
                at: r.get(1)?,
                phone: r.get(2)?,
                reason: r.get(3)?,
                address: r.get(4)?,
                article_id: r.get(5)?,
                done: r.get(6)?,
                outcome: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a request done with what came of it (empty: nothing said); false when there is
    /// no such open request.
    pub fn finish_callback_request(&self, id: i64, at: NaiveDateTime, by: &str, outcome: &str) -> StoreResult<bool> {
        let outcome = Some(outcome.trim()).filter(|o| !o.is_empty());
        let n = self.conn.execute(
            "UPDATE callback_requests SET done_at = ?2, done_by = ?3, outcome = ?4 WHERE id = ?1 AND done_at IS NULL",
            params![id, at, by, outcome],
        )?;
        Ok(n == 1)
    }

    pub fn save_ivr_trail(&self, call: i64, trail: &[TrailRow]) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO ivr_trail (call_id, seq, after_ms, flow, node, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (seq, v) in trail.iter().enumerate() {
            stmt.execute(params![call, seq as i64, v.after_ms as i64, v.flow, v.node, v.note])?;
        }
        Ok(())
    }

    pub fn ivr_trail(&self, call: i64) -> StoreResult<Vec<TrailRow>> {
        let mut stmt = self.conn.prepare_cached("SELECT after_ms, flow, node, note FROM ivr_trail WHERE call_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([call], |r| {
            Ok(TrailRow { after_ms: r.get::<_, i64>(0)? as u64, flow: r.get(1)?, node: r.get(2)?, note: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Published articles marked for the IVR: `(id, kind, title, body)`, by kind then title.
    pub fn ivr_articles(&self) -> StoreResult<Vec<(i64, rexian_shared::ArticleKind, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, title, body FROM articles WHERE published = 1 AND for_ivr = 1 ORDER BY kind, title",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)))?;
        rows.map(|row| {
            let (id, kind, title, body) = row?;
            Ok((id, code(rexian_shared::ArticleKind::from_code, "article kind", kind)?, title, body))
        })
        .collect()
    }
}
