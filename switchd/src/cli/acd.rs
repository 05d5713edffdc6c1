//! `switchd acd …`: the ACD's records — agent state changes and the queue event log.

use anyhow::bail;
use clap::Subcommand;

use super::{print_json, print_table};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum AcdCmd {
    /// Agent state changes, newest first.
    States {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// The queue event log, newest first.
    Events {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: Store, cmd: AcdCmd, now: chrono::NaiveDateTime) -> anyhow::Result<()> {
    match cmd {
        AcdCmd::States { user, limit, json } => {
            let user_id = match user {
                Some(name) => match store.read(move |db| db.user_by_username(&name, now)).await? {
                    Some(u) => Some(u.info.id),
                    None => bail!("没有此用户 / no such user"),
                },
                None => None,
            };
            let rows = store.read(move |db| db.agent_states(user_id, limit)).await?;
            if json {
                return print_json(&rows);
            }
            let mut table = vec![["时间 At", "用户 User", "原状态 From", "新状态 To", "原因 Reason", "触发 Cause"].map(String::from)];
            for r in rows {
                let at = r.at.format("%Y-%m-%d %H:%M:%S").to_string();
                table.push([at, r.user_id.to_string(), r.from_state, r.to_state, r.reason.unwrap_or_default(), r.cause]);
            }
            print_table(&table);
        }
        AcdCmd::Events { limit, json } => {
            let rows = store.read(move |db| db.queue_events(limit)).await?;
            if json {
                return print_json(&rows);
            }
            let mut table = vec![["时间 At", "队列 Queue", "事件 Kind", "通话 Call", "座席 Agent", "毫秒 ms", "说明 Detail"].map(String::from)];
            for r in rows {
                let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
                let at = r.at.format("%Y-%m-%d %H:%M:%S").to_string();
                table.push([at, r.queue, r.kind, opt(r.call_id), opt(r.agent_id), opt(r.wait_ms), r.detail]);
            }
            print_table(&table);
        }
    }
    Ok(())
}
