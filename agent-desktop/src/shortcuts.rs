//! Keyboard shortcuts of the workstation. Agents keep their hands on the keyboard while they
//! type a ticket, so every frequent act of a shift has a key (shown on its button's tooltip and
//! in 设置). Function keys are taken whatever has the focus; Ctrl+letter ones too, because
//! egui's text fields do not use Ctrl+D / Ctrl+N / Ctrl+S / Ctrl+O.

use crate::i18n::{label, Lang};
use eframe::egui::{self, Key, KeyboardShortcut, Modifiers};

/// What a shortcut asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// F2: answer the offered call.
    Answer,
    /// F3: sign in to the queues, or become ready again (返回 / end wrap-up).
    Ready,
    /// F4: hang up (or decline an offer).
    HangUp,
    /// F5: not ready (临时闭席) with the reason picked in the bar.
    NotReady,
    /// F6: hold or resume.
    Hold,
    /// F7: mute or unmute.
    Mute,
    /// Ctrl+D: the cursor to the number to dial (Enter dials it).
    Dial,
    /// Ctrl+N: a new ticket (the intake form, emptied, keeping the call's number and link).
    NewTicket,
    /// Ctrl+S: save the ticket being taken.
    Save,
    /// Ctrl+O: open the ticket just saved (to dispatch it, print its form…).
    OpenSaved,
}

impl Shortcut {
    pub const ALL: &'static [Shortcut] = &[
        Shortcut::Answer,
        Shortcut::Ready,
        Shortcut::HangUp,
        Shortcut::NotReady,
        Shortcut::Hold,
        Shortcut::Mute,
        Shortcut::Dial,
        Shortcut::NewTicket,
        Shortcut::Save,
        Shortcut::OpenSaved,
    ];

    pub fn keys(self) -> KeyboardShortcut {
        let f = |key| KeyboardShortcut::new(Modifiers::NONE, key);
        let ctrl = |key| KeyboardShortcut::new(Modifiers::COMMAND, key);
        match self {
            Shortcut::Answer => f(Key::F2),
            Shortcut::Ready => f(Key::F3),
            Shortcut::HangUp => f(Key::F4),
            Shortcut::NotReady => f(Key::F5),
            Shortcut::Hold => f(Key::F6),
            Shortcut::Mute => f(Key::F7),
            Shortcut::Dial => ctrl(Key::D),
            Shortcut::NewTicket => ctrl(Key::N),
            Shortcut::Save => ctrl(Key::S),
            Shortcut::OpenSaved => ctrl(Key::O),
        }
    }

    /// The key as written on a tooltip: "F2", "Ctrl+S".
    pub fn key_text(self) -> String {
        let k = self.keys();
        let key = k.logical_key.name();
        if k.modifiers.is_none() { key.to_owned() } else { format!("Ctrl+{key}") }
    }

    pub fn what(self, lang: Lang) -> &'static str {
        match self {
            Shortcut::Answer => label("接听", "Answer", lang),
            Shortcut::Ready => label("签入 / 就绪 / 返回", "Sign in / ready / return", lang),
            Shortcut::HangUp => label("挂断 / 拒接", "Hang up / decline", lang),
            Shortcut::NotReady => label("临时闭席", "Not ready", lang),
            Shortcut::Hold => label("保持 / 恢复", "Hold / resume", lang),
            Shortcut::Mute => label("静音 / 取消静音", "Mute / unmute", lang),
            Shortcut::Dial => label("拨号（输入号码后按回车）", "Dial (type the number, then Enter)", lang),
            Shortcut::NewTicket => label("新建工单", "New ticket", lang),
            Shortcut::Save => label("保存工单", "Save the ticket", lang),
            Shortcut::OpenSaved => label("打开刚保存的工单", "Open the ticket just saved", lang),
        }
    }

    /// The shortcuts pressed in this frame, taken out of the input so no widget also acts on them.
    pub fn pressed(ctx: &egui::Context) -> Vec<Shortcut> {
        ctx.input_mut(|i| Shortcut::ALL.iter().copied().filter(|s| i.consume_shortcut(&s.keys())).collect())
    }
}

/// `text` with its shortcut appended for a tooltip: "接听（F2）".
pub fn hint(s: Shortcut, lang: Lang) -> String {
    format!("{}（{}）", s.what(lang), s.key_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shortcut_has_its_own_key_and_a_chinese_name() {
        let keys: std::collections::BTreeSet<String> = Shortcut::ALL.iter().map(|s| s.key_text()).collect();
        assert_eq!(keys.len(), Shortcut::ALL.len(), "no key is used twice");
        assert_eq!(hint(Shortcut::Answer, Lang::Zh), "接听（F2）");
        assert_eq!(Shortcut::Save.key_text(), "Ctrl+S");
    }
}
