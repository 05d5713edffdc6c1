//! agent-desktop — the agent workstation (话务员座席): login with certificate pinning, the ACD
//! state bar, the softphone on the PC's headset, the screen pop, ticket intake and the ticket
//! list. Screens are structs holding their state with a `ui()` that draws them (style #15);
//! the network and audio live in [`backend::Backend`], which the screens only send commands to.

pub mod app;
pub mod audio;
pub mod backend;
pub mod export;
pub mod fonts;
pub mod i18n;
pub mod jitter;
pub mod perf;
pub mod print;
pub mod screens;
pub mod settings;
pub mod shortcuts;

pub use app::AgentApp;
