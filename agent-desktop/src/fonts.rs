//! A CJK font for egui (design decision 9): the system's through fontconfig (`fc-match`), else
//! Noto Sans CJK or WenQuanYi from the paths Debian, UOS and Kylin install them to. egui's own
//! fonts have no Chinese glyphs, so without this every label would be boxes.

use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where distributions put Noto Sans CJK and WenQuanYi, tried when fontconfig finds nothing.
pub const KNOWN_PATHS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
];

/// The system's font for Simplified Chinese, as fontconfig picks it; `None` when fontconfig is
/// missing or picks a font without Chinese (it falls back to DejaVu when no CJK font exists).
pub fn fontconfig_cjk() -> Option<PathBuf> {
    let out = std::process::Command::new("fc-match")
        .args(["-f", "%{file}\n%{lang}", "sans-serif:lang=zh-cn"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let file = PathBuf::from(lines.next()?.trim());
    let langs = lines.next().unwrap_or_default();
    (out.status.success() && langs.split('|').any(|l| l == "zh-cn") && file.exists()).then_some(file)
}

/// The CJK font file to use: fontconfig's choice, else the first known path present.
pub fn find_cjk_font() -> Option<PathBuf> {
    fontconfig_cjk().or_else(|| KNOWN_PATHS.iter().map(Path::new).find(|p| p.exists()).map(Path::to_owned))
}

/// Adds the CJK font after egui's own (Latin stays egui's, Chinese comes from this one) to both
/// families. Returns the file used, or `None` when no CJK font was found (Chinese then shows
/// as boxes; the caller says so in the log).
pub fn install_cjk_font(ctx: &egui::Context) -> Option<PathBuf> {
    let path = find_cjk_font()?;
    let bytes = std::fs::read(&path).ok()?;
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert("cjk".to_owned(), Arc::new(egui::FontData::from_owned(bytes)));
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts.families.entry(family).or_default().push("cjk".to_owned());
    }
    ctx.set_fonts(fonts);
    Some(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cjk_font_is_found_on_a_machine_set_up_by_scripts_deps() {
        // scripts/deps installs fonts-wqy-microhei and fontconfig: both lookups must succeed.
        let via_fc = super::fontconfig_cjk().expect("fontconfig names a Chinese font");
        assert!(via_fc.exists());
        assert!(super::find_cjk_font().is_some());
    }
}
