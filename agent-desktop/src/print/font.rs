//! The CJK font of a printed form: measured with `ttf-parser`, cut down with `subsetter` to the
//! glyphs the form uses, and embedded as a CID-keyed Type0 font (Identity-H, so a string is
//! glyph ids as two bytes each) with a ToUnicode CMap, so the PDF's text can be searched and
//! copied. A subset keeps a form at tens of kilobytes where the whole font is megabytes.

use super::PrintError;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Chunk, Filter, Name, Rect, Ref, Str};
use std::collections::BTreeMap;
use std::path::Path;

/// A font file read into memory: a `.ttf`/`.otf`, or face 0 of a `.ttc` collection
/// (WenQuanYi Micro Hei and Noto Sans CJK ship as collections whose first face is the
/// Simplified Chinese one).
pub struct CjkFont {
    data: Vec<u8>,
    index: u32,
    units_per_em: f32,
}

impl CjkFont {
    /// The system's CJK font, the one the desktop draws its Chinese with (`fonts.rs`).
    pub fn system() -> Result<CjkFont, PrintError> {
        let path = crate::fonts::find_cjk_font().ok_or(PrintError::NoFont)?;
        CjkFont::from_file(&path)
    }

    /// The font in `path`; of a collection, the Simplified Chinese face (Noto Sans CJK's first
    /// face is the Japanese one, whose forms of shared characters differ), else the first.
    pub fn from_file(path: &Path) -> Result<CjkFont, PrintError> {
        let data = std::fs::read(path).map_err(|e| PrintError::FontUnreadable(format!("{}: {e}", path.display())))?;
        let faces = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        let index = (0..faces).find(|&i| is_simplified_chinese(&data, i)).unwrap_or(0);
        CjkFont::from_bytes(data, index)
    }

    /// Face `index` of `data`; fails unless the face maps Chinese characters to glyphs.
    pub fn from_bytes(data: Vec<u8>, index: u32) -> Result<CjkFont, PrintError> {
        let face = ttf_parser::Face::parse(&data, index).map_err(|e| PrintError::FontUnreadable(e.to_string()))?;
        if face.glyph_index('中').is_none() {
            return Err(PrintError::FontUnreadable("the font has no Chinese glyphs".into()));
        }
        let units_per_em = f32::from(face.units_per_em());
        Ok(CjkFont { data, index, units_per_em })
    }

    fn face(&self) -> Result<ttf_parser::Face<'_>, PrintError> {
        ttf_parser::Face::parse(&self.data, self.index).map_err(|e| PrintError::FontUnreadable(e.to_string()))
    }

    /// Glyph and advance (in 1/1000 em) of every character; tabs and other control characters
    /// become spaces, characters the font lacks its `.notdef` box.
    pub fn metrics(&self) -> Result<Metrics<'_>, PrintError> {
        Ok(Metrics { face: self.face()?, per_mille: 1000.0 / self.units_per_em })
    }
}

/// Whether face `index` is named for Simplified Chinese ("Noto Sans CJK SC", "Source Han Sans CN").
fn is_simplified_chinese(data: &[u8], index: u32) -> bool {
    let Ok(face) = ttf_parser::Face::parse(data, index) else { return false };
    let family = |id| id == ttf_parser::name_id::FAMILY || id == ttf_parser::name_id::TYPOGRAPHIC_FAMILY;
    face.names().into_iter().filter(|n| family(n.name_id)).filter_map(|n| n.to_string()).any(|name| name.split_whitespace().any(|w| w == "SC" || w == "CN"))
}

/// Measures text in one font; see [`CjkFont::metrics`].
pub struct Metrics<'a> {
    face: ttf_parser::Face<'a>,
    per_mille: f32,
}

impl Metrics<'_> {
    pub fn glyph(&self, c: char) -> (u16, f32) {
        let c = if c.is_control() { ' ' } else { c };
        let gid = self.face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
        let advance = self.face.glyph_hor_advance(gid).map_or(1000.0, |a| f32::from(a) * self.per_mille);
        (gid.0, advance)
    }

    /// Width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.glyph(c).1).sum::<f32>() * size / 1000.0
    }
}

/// The glyphs a document shows, numbered anew from 1 in the order first used (0 is `.notdef`);
/// those numbers are the CIDs written in the content streams.
#[derive(Default)]
pub struct GlyphSet {
    remapper: subsetter::GlyphRemapper,
    /// New glyph id → the character it stands for (for the ToUnicode CMap) and its advance.
    used: BTreeMap<u16, (char, f32)>,
}

impl GlyphSet {
    /// `text` as an Identity-H string: the new glyph id of each character, big-endian.
    pub fn encode(&mut self, metrics: &Metrics<'_>, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let (gid, advance) = metrics.glyph(c);
            let cid = self.remapper.remap(gid);
            self.used.entry(cid).or_insert((c, advance));
            out.extend_from_slice(&cid.to_be_bytes());
        }
        out
    }

    /// Writes the Type0 font `type0` with its descendant, descriptor, subset font file and
    /// ToUnicode CMap into `chunk`, taking ids from `next` on.
    pub fn write(&self, font: &CjkFont, chunk: &mut Chunk, type0: Ref, next: &mut Ref) -> Result<(), PrintError> {
        let mut alloc = || next.bump();
        let (cid_id, descriptor_id, file_id, cmap_id) = (alloc(), alloc(), alloc(), alloc());
        let face = font.face()?;
        let subset = subsetter::subset(&font.data, font.index, &self.remapper).map_err(|e| PrintError::Subset(e.to_string()))?;
        let cff = face.tables().cff.is_some();
        let postscript = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            // Windows and Unicode records are UTF-16; Macintosh ones (listed first) ASCII.
            .find_map(|n| n.to_string().or_else(|| n.name.is_ascii().then(|| String::from_utf8_lossy(n.name).into_owned())))
            .unwrap_or_else(|| "CJK".into());
        // A subset's name carries a six-letter tag, made from its glyphs so another subset of
        // the font gets another tag (PDF 32000 9.6.4).
        let hash = self.remapper.remapped_gids().fold(0xcbf2_9ce4_8422_2325u64, |h, g| (h ^ u64::from(g)).wrapping_mul(0x100_0000_01b3));
        let tag: String = (0..6).map(|i| char::from(b'A' + (hash >> (i * 8) & 0xff) as u8 % 26)).collect();
        let base = format!("{tag}+{}", postscript.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ""));
        let base = Name(base.as_bytes());
        let info = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
        let scale = |v: i16| f32::from(v) * 1000.0 / font.units_per_em;

        chunk.type0_font(type0).base_font(base).encoding_predefined(Name(b"Identity-H")).descendant_font(cid_id).to_unicode(cmap_id);

        let mut cid = chunk.cid_font(cid_id);
        cid.subtype(if cff { CidFontType::Type0 } else { CidFontType::Type2 }).base_font(base).system_info(info).font_descriptor(descriptor_id).default_width(1000.0);
        if !cff {
            // subsetter numbers the glyphs of the subset by their CIDs.
            cid.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        let widths: Vec<f32> = (0..self.remapper.num_gids()).map(|g| self.used.get(&g).map_or(1000.0, |u| u.1)).collect();
        cid.widths().consecutive(0, widths);
        drop(cid);

        let bbox = face.global_bounding_box();
        let mut descriptor = chunk.font_descriptor(descriptor_id);
        descriptor
            .name(base)
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(scale(bbox.x_min), scale(bbox.y_min), scale(bbox.x_max), scale(bbox.y_max)))
            .italic_angle(0.0)
            .ascent(scale(face.ascender()))
            .descent(scale(face.descender()))
            .cap_height(scale(face.capital_height().unwrap_or(face.ascender())))
            .stem_v(80.0);
        if cff {
            descriptor.font_file3(file_id);
        } else {
            descriptor.font_file2(file_id);
        }
        drop(descriptor);

        // A CFF font (Noto Sans CJK) is embedded as its bare CID-keyed CFF program, which every
        // reader takes; a TrueType one (WenQuanYi) as the whole subset file.
        let program = if cff {
            ttf_parser::RawFace::parse(&subset, 0).ok().and_then(|raw| raw.table(ttf_parser::Tag::from_bytes(b"CFF "))).ok_or_else(|| PrintError::Subset("no CFF table in the subset".into()))?
        } else {
            &subset
        };
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(program, 6);
        let mut file = chunk.stream(file_id, &compressed);
        file.filter(Filter::FlateDecode);
        if cff {
            file.pair(Name(b"Subtype"), Name(b"CIDFontType0C"));
        }
        drop(file);

        let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Rexian-UCS"), info);
        for (cid, (c, _)) in &self.used {
            cmap.pair(*cid, *c);
        }
        chunk.cmap(cmap_id, &cmap.finish());
        Ok(())
    }
}
