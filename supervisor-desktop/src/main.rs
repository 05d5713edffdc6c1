//! supervisor-desktop — the supervisor's (班长) console. The egui seat board, monitoring and
//! statistics arrive with their issue; until then this console form logs in over the real desk
//! protocol and prints the open tickets by state, overdue and supervised counts.
//!
//! Usage: `REXIAN_PASSWORD=… supervisor-desktop SERVER:PORT USERNAME`

use rexian_shared::client::DeskClient;
use rexian_shared::{TicketQuery, TicketState};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("supervisor-desktop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(user)) = (args.next(), args.next()) else {
        return Err("用法 / usage: REXIAN_PASSWORD=… supervisor-desktop SERVER:PORT USERNAME".into());
    };
    let password = std::env::var("REXIAN_PASSWORD").map_err(|_| "请设置REXIAN_PASSWORD / set REXIAN_PASSWORD")?;
    let (client, session) = DeskClient::connect_and_login(server.parse()?, &user, &password, "supervisor-desktop").await?;
    println!("已登录 / logged in: {}（{}）", session.user.display_name, session.user.role.zh());
    for state in TicketState::ALL.iter().filter(|s| !s.is_final()) {
        let q = TicketQuery { states: vec![*state], page_size: 1, ..TicketQuery::default() };
        println!("  {:<8} {}", state.zh(), client.search_tickets(q).await?.total);
    }
    let overdue = client.search_tickets(TicketQuery { overdue_only: true, page_size: 1, ..TicketQuery::default() }).await?;
    let supervised = client.search_tickets(TicketQuery { supervised_only: true, page_size: 1, ..TicketQuery::default() }).await?;
    println!("超期 / overdue {}  督办 / supervised {}", overdue.total, supervised.total);
    client.close().await;
    Ok(())
}
