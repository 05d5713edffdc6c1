//! `switchd ivr …`: flows as YAML files (export, validate, import), the callback list, and the
//! path a call took through the flows.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::{print_json, print_table};
use crate::config::Config;
use crate::ivr::flow::Flow;
use crate::ivr::records;
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum IvrCmd {
    /// The flows, latest versions.
    List,
    /// Print a flow as YAML (the latest version unless --version).
    Export {
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Check a flow file without saving it.
    Validate { file: PathBuf },
    /// Validate and save a flow file as the flow's next version; calls use it from the next one.
    Import { file: PathBuf },
    /// The callback list: after-hours callers, fax-back and e-mail-back requests.
    Callbacks {
        /// Include the ones already done.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// The path call ID took through the flows (nodes, keys, what was said).
    Trail {
        call: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, store: Store, cmd: IvrCmd, now: chrono::NaiveDateTime) -> anyhow::Result<()> {
    let prompts_dir = config.data_dir.join("prompts");
    let prompt_exists = move |name: &str| prompts_dir.join(format!("{}.wav", name.trim_end_matches(".wav"))).is_file();
    match cmd {
        IvrCmd::List => {
            let mut rows = vec![["流程 Flow", "版本 Version", "说明 Description", "保存时间 Saved", "保存人 By"].map(String::from)];
            for f in records::list_flows(&store).await? {
                rows.push([f.name, f.version.to_string(), f.description, f.saved_at.format("%Y-%m-%d %H:%M").to_string(), f.saved_by]);
            }
            print_table(&rows);
        }
        IvrCmd::Export { name, version } => {
            let (_, yaml) = records::flow_yaml(&store, name, version).await?;
            print!("{yaml}");
        }
        IvrCmd::Validate { file } => {
            let flow = Flow::from_yaml(&read(&file)?)?;
            let names: BTreeSet<String> = records::list_flows(&store).await?.into_iter().map(|f| f.name).collect();
            flow.validate(&names, &prompt_exists)?;
            println!("流程 {} 有效 / valid ({} nodes)", flow.name, flow.nodes.len());
        }
        IvrCmd::Import { file } => {
            let (info, _) = records::save_flow(&store, read(&file)?, "cli".into(), now, &prompt_exists).await?;
            println!("已保存流程 {} 第{}版 / saved {} version {}", info.name, info.version, info.name, info.version);
        }
        IvrCmd::Callbacks { all, json } => {
            let requests = records::callbacks(&store, all).await?;
            if json {
                return print_json(&requests);
            }
            let mut rows = vec![["编号 ID", "时间 At", "号码 Phone", "原因 Reason", "地址 Address", "文章 Article", "已处理 Done"].map(String::from)];
            for r in requests {
                rows.push([
                    r.id.to_string(),
                    r.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    r.phone,
                    r.reason,
                    r.address.unwrap_or_default(),
                    r.article_id.map(|a| a.to_string()).unwrap_or_default(),
                    if r.done { "是 yes" } else { "否 no" }.into(),
                ]);
            }
            print_table(&rows);
        }
        IvrCmd::Trail { call, json } => {
            let trail = records::trail(&store, call).await?;
            if json {
                return print_json(&trail);
            }
            if trail.is_empty() {
                bail!("通话{call}没有IVR记录 / call {call} has no IVR trail");
            }
            let mut rows = vec![["毫秒 ms", "流程 Flow", "节点 Node", "内容 Note"].map(String::from)];
            rows.extend(trail.into_iter().map(|v| [v.after_ms.to_string(), v.flow, v.node, v.note]));
            print_table(&rows);
        }
    }
    Ok(())
}

fn read(file: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}
