//! agent-desktop — the agent workstation. The egui window, softphone and intake screens arrive
//! with their issue; until then this console form logs in over the real desk protocol (with
//! certificate pinning) and lists the agent's due and overdue tickets.
//!
//! Usage: `REXIAN_PASSWORD=… agent-desktop SERVER:PORT USERNAME`

use rexian_shared::client::DeskClient;
use rexian_shared::Request;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-desktop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(user)) = (args.next(), args.next()) else {
        return Err("用法 / usage: REXIAN_PASSWORD=… agent-desktop SERVER:PORT USERNAME".into());
    };
    let password = std::env::var("REXIAN_PASSWORD").map_err(|_| "请设置REXIAN_PASSWORD / set REXIAN_PASSWORD")?;
    let (client, session) = DeskClient::connect_and_login(server.parse()?, &user, &password, "agent-desktop").await?;
    let agent_no = session.user.agent_no.as_ref().map(|a| format!(" 工号{a}")).unwrap_or_default();
    println!("已登录 / logged in: {}（{}{}）", session.user.display_name, session.user.role.zh(), agent_no);
    let due = client.request(Request::DueTickets { within_working_days: 2 }).await?;
    if let rexian_shared::Response::Tickets { page } = due {
        println!("两个工作日内到期及超期工单 / due within 2 working days or overdue: {}", page.total);
        for t in page.items {
            let flag = if t.overdue { "超期" } else { "" };
            println!("  {} {} {} {} {}", t.no, t.kind.zh(), t.state.zh(), t.due_date.map(|d| d.to_string()).unwrap_or_default(), flag);
        }
    }
    client.close().await;
    Ok(())
}
