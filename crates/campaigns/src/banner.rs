//! Banners: an SVG per style, rendered to PNG with resvg. Text is shaped with the system's
//! Noto CJK fonts (Debian's `fonts-noto-cjk`, installed by the project's scripts); without a
//! Korean font a render fails with that reason instead of drawing empty boxes.

use std::sync::{Arc, OnceLock};

use issuance_core::enums::BannerStyle;
use resvg::{tiny_skia, usvg};

use crate::model::is_hex_color;

/// Banner size in pixels (the common link-preview / feed size).
pub const WIDTH: u32 = 1200;
/// Height.
pub const HEIGHT: u32 = 630;

/// The font family banners ask for.
pub const FONT_FAMILY: &str = "Noto Sans CJK KR";

/// The texts on a banner.
#[derive(Clone, Debug, Default)]
pub struct BannerText {
    /// The store's name.
    pub store: String,
    /// The event's title.
    pub title: String,
    /// The prize.
    pub prize: String,
    /// How to take part.
    pub participation: String,
    /// The period, already formatted (e.g. `2026.12.01 ~ 2026.12.31`).
    pub period: String,
}

/// A banner's colours (`#RGB` or `#RRGGBB`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Palette {
    /// Background.
    pub background: String,
    /// Text.
    pub text: String,
    /// Accent (bars, frames, stickers).
    pub accent: String,
}

impl Palette {
    /// The style's own colours.
    pub fn of(style: BannerStyle) -> Self {
        let (background, text, accent) = match style {
            BannerStyle::Simple => ("#FFFFFF", "#1F2933", "#FF6B35"),
            BannerStyle::Fancy => ("#2D1B69", "#FFFFFF", "#FFC93C"),
            BannerStyle::Trendy => ("#F5F0E6", "#111111", "#00B894"),
        };
        Self {
            background: background.into(),
            text: text.into(),
            accent: accent.into(),
        }
    }

    /// This palette with each colour given replaced (colours that are not hex are ignored;
    /// callers validate them first).
    pub fn with(mut self, background: Option<&str>, text: Option<&str>, accent: Option<&str>) -> Self {
        for (slot, given) in [
            (&mut self.background, background),
            (&mut self.text, text),
            (&mut self.accent, accent),
        ] {
            if let Some(c) = given.filter(|c| is_hex_color(c)) {
                *slot = c.to_owned();
            }
        }
        self
    }
}

/// A rendered banner.
#[derive(Clone, Debug)]
pub struct Png {
    /// The PNG file.
    pub bytes: Vec<u8>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Why a banner could not be drawn.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    /// No font with Korean glyphs on this machine.
    #[error("한글 글꼴({FONT_FAMILY})이 없습니다: fonts-noto-cjk를 설치하세요.")]
    NoKoreanFont,
    /// The SVG could not be built or drawn.
    #[error("배너를 그릴 수 없습니다: {0}")]
    Render(String),
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Roughly how wide `c` is, in ems (Hangul and CJK full width, Latin about half).
fn em(c: char) -> f32 {
    match c {
        ' ' => 0.3,
        c if c.is_ascii_uppercase() || c.is_ascii_digit() => 0.62,
        c if c.is_ascii() => 0.52,
        _ => 1.0,
    }
}

/// Breaks `text` into at most `max_lines` lines of at most `width` pixels at `size` px,
/// preferring spaces; the last line ends with `…` when text is left over.
pub fn wrap(text: &str, size: f32, width: f32, max_lines: usize) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut line_w = 0.0;
    let mut overflow = false;
    'words: for word in &words {
        let sep = if line.is_empty() { 0.0 } else { em(' ') * size };
        let word_w: f32 = word.chars().map(|c| em(c) * size).sum();
        if line_w + sep + word_w <= width {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            line_w += sep + word_w;
            continue;
        }
        // The word does not fit: break the line (or the word itself, when it is too long alone).
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_w = 0.0;
            if lines.len() == max_lines {
                overflow = true;
                break;
            }
        }
        for c in word.chars() {
            let w = em(c) * size;
            if line_w + w > width {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
                if lines.len() == max_lines {
                    overflow = true;
                    break 'words;
                }
            }
            line.push(c);
            line_w += w;
        }
    }
    if !line.is_empty() {
        if lines.len() < max_lines {
            lines.push(line);
        } else {
            overflow = true;
        }
    }
    if overflow && let Some(last) = lines.last_mut() {
        let mut chars: Vec<char> = last.chars().collect();
        while !chars.is_empty() && chars.iter().map(|c| em(*c) * size).sum::<f32>() + size > width {
            chars.pop();
        }
        *last = chars.into_iter().collect::<String>() + "…";
    }
    lines
}

fn text_block(lines: &[String], x: f32, y: f32, size: f32, fill: &str, weight: u32, anchor: &str) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(&format!(
            r#"<text x="{x}" y="{}" font-size="{size}" font-weight="{weight}" fill="{fill}" text-anchor="{anchor}">{}</text>"#,
            y + i as f32 * size * 1.25,
            escape(line)
        ));
    }
    out
}

/// The SVG of a banner.
pub fn svg(style: BannerStyle, t: &BannerText, p: &Palette) -> String {
    let (w, h) = (WIDTH as f32, HEIGHT as f32);
    let head = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT_FAMILY}">"#
    );
    let body = match style {
        BannerStyle::Simple => {
            let title = wrap(&t.title, 64.0, w - 160.0, 2);
            let prize = wrap(&t.prize, 40.0, w - 200.0, 1);
            let how = wrap(&t.participation, 26.0, w - 160.0, 2);
            format!(
                r#"<rect width="{w}" height="{h}" fill="{bg}"/>
<rect x="80" y="70" width="120" height="10" fill="{ac}"/>
{store}{title}
<rect x="80" y="330" width="8" height="56" fill="{ac}"/>{prize}{how}{period}"#,
                bg = p.background,
                ac = p.accent,
                store = text_block(
                    std::slice::from_ref(&t.store),
                    80.0,
                    130.0,
                    30.0,
                    &p.accent,
                    700,
                    "start"
                ),
                title = text_block(&title, 80.0, 215.0, 64.0, &p.text, 800, "start"),
                prize = text_block(&prize, 108.0, 372.0, 40.0, &p.text, 700, "start"),
                how = text_block(&how, 80.0, 460.0, 26.0, &p.text, 400, "start"),
                period = text_block(
                    std::slice::from_ref(&t.period),
                    80.0,
                    570.0,
                    24.0,
                    &p.accent,
                    700,
                    "start"
                ),
            )
        }
        BannerStyle::Fancy => {
            let title = wrap(&t.title, 60.0, w - 200.0, 2);
            let prize = wrap(&t.prize, 40.0, w - 360.0, 1);
            let how = wrap(&t.participation, 24.0, w - 240.0, 1);
            let mut confetti = String::new();
            for i in 0..28u32 {
                // A fixed scatter (no randomness: the same content draws the same banner).
                let x = (i * 197 + 53) % WIDTH;
                let y = (i * 131 + 17) % HEIGHT;
                let r = 4 + (i * 7) % 9;
                let fill = if i % 3 == 0 { &p.accent } else { &p.text };
                confetti.push_str(&format!(
                    r#"<circle cx="{x}" cy="{y}" r="{r}" fill="{fill}" opacity="0.35"/>"#
                ));
            }
            format!(
                r#"<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="{bg}"/><stop offset="1" stop-color="{ac}" stop-opacity="0.55"/></linearGradient></defs>
<rect width="{w}" height="{h}" fill="{bg}"/><rect width="{w}" height="{h}" fill="url(#g)"/>{confetti}
{store}{title}
<rect x="180" y="330" width="840" height="90" rx="45" fill="none" stroke="{ac}" stroke-width="6"/>{prize}{how}{period}"#,
                bg = p.background,
                ac = p.accent,
                store = text_block(
                    &[format!("★ {} ★", t.store)],
                    w / 2.0,
                    95.0,
                    30.0,
                    &p.accent,
                    700,
                    "middle"
                ),
                title = text_block(&title, w / 2.0, 185.0, 60.0, &p.text, 900, "middle"),
                prize = text_block(&prize, w / 2.0, 390.0, 40.0, &p.accent, 800, "middle"),
                how = text_block(&how, w / 2.0, 490.0, 24.0, &p.text, 400, "middle"),
                period = text_block(
                    std::slice::from_ref(&t.period),
                    w / 2.0,
                    570.0,
                    24.0,
                    &p.text,
                    700,
                    "middle"
                ),
            )
        }
        BannerStyle::Trendy => {
            let title = wrap(&t.title, 66.0, 620.0, 3);
            let prize = wrap(&t.prize, 34.0, 520.0, 2);
            let how = wrap(&t.participation, 24.0, 480.0, 2);
            format!(
                r#"<rect width="{w}" height="{h}" fill="{bg}"/>
<polygon points="780,0 {w},0 {w},{h} 560,{h}" fill="{ac}"/>
<g transform="translate(960 250) rotate(-12)"><circle r="150" fill="{tx}"/>
<text y="-20" font-size="40" font-weight="900" fill="{bg}" text-anchor="middle">GIFT</text>
<text y="40" font-size="34" font-weight="700" fill="{bg}" text-anchor="middle">경품 증정</text></g>
{store}{title}{prize}{how}{period}"#,
                bg = p.background,
                ac = p.accent,
                tx = p.text,
                store = text_block(
                    &[format!("#{}", t.store.replace(' ', ""))],
                    70.0,
                    95.0,
                    30.0,
                    &p.accent,
                    800,
                    "start"
                ),
                title = text_block(&title, 70.0, 190.0, 66.0, &p.text, 900, "start"),
                prize = text_block(&prize, 70.0, 420.0, 34.0, &p.text, 700, "start"),
                how = text_block(&how, 70.0, 510.0, 24.0, &p.text, 400, "start"),
                period = text_block(
                    std::slice::from_ref(&t.period),
                    70.0,
                    595.0,
                    22.0,
                    &p.text,
                    700,
                    "start"
                ),
            )
        }
    };
    format!("{head}\n{body}\n</svg>")
}

fn fonts() -> &'static Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        if let Ok(dir) = std::env::var("BANNER_FONT_DIR") {
            db.load_fonts_dir(dir);
        }
        Arc::new(db)
    })
}

/// Whether a Korean font is installed.
pub fn has_korean_font() -> bool {
    fonts().faces().any(|f| {
        f.families
            .iter()
            .any(|(name, _)| name.contains("CJK KR") || name.contains("CJK"))
    })
}

/// Draws an SVG (CPU-bound: call it from a blocking thread).
pub fn render(svg: &str) -> Result<Png, RenderError> {
    if !has_korean_font() {
        return Err(RenderError::NoKoreanFont);
    }
    let mut opt = usvg::Options {
        fontdb: Arc::clone(fonts()),
        ..usvg::Options::default()
    };
    opt.font_family = FONT_FAMILY.to_owned();
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| RenderError::Render(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| RenderError::Render("empty canvas".into()))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let bytes = pixmap
        .encode_png()
        .map_err(|e| RenderError::Render(e.to_string()))?;
    Ok(Png {
        bytes,
        width: size.width(),
        height: size.height(),
    })
}

/// The SVG of a banner, drawn.
pub fn banner(style: BannerStyle, t: &BannerText, p: &Palette) -> Result<Png, RenderError> {
    render(&svg(style, t, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> BannerText {
        BannerText {
            store: "우리동네 카페".into(),
            title: "우리동네 카페 첫 방문 선착순 이벤트".into(),
            prize: "아메리카노 무료 쿠폰".into(),
            participation: "처음 방문한 고객이 이벤트 페이지에서 응모하면 선착순으로 지급".into(),
            period: "2026.12.01 ~ 2026.12.31".into(),
        }
    }

    #[test]
    fn svg_carries_the_korean_text_escaped() {
        let mut t = text();
        t.prize = "커피 & <케이크>".into();
        for style in BannerStyle::ALL {
            let s = svg(style, &t, &Palette::of(style));
            assert!(s.contains("우리동네 카페"), "{style:?}");
            assert!(s.contains("커피 &amp; &lt;케이크&gt;"), "{style:?}");
            assert!(!s.contains("<케이크>"));
            assert!(s.contains(FONT_FAMILY));
        }
    }

    #[test]
    fn wrap_breaks_lines_and_marks_what_is_cut() {
        let lines = wrap("가나다라 마바사아 자차카타 파하", 10.0, 45.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'), "{lines:?}");
        assert_eq!(wrap("짧은 글", 10.0, 500.0, 2), vec!["짧은 글".to_owned()]);
        assert_eq!(wrap("", 10.0, 500.0, 2), Vec::<String>::new());
        // A word longer than a line is broken inside.
        assert_eq!(wrap("가나다라마바", 10.0, 30.0, 3), vec!["가나다", "라마바"]);
    }

    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&png[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&png[16..20]), be(&png[20..24]))
    }

    #[test]
    fn every_style_renders_a_png_of_the_banner_size_with_its_text_drawn() {
        assert!(
            has_korean_font(),
            "fonts-noto-cjk must be installed (scripts/test installs it)"
        );
        for style in BannerStyle::ALL {
            let with_text = banner(style, &text(), &Palette::of(style)).unwrap();
            assert_eq!(png_size(&with_text.bytes), (WIDTH, HEIGHT), "{style:?}");
            assert_eq!((with_text.width, with_text.height), (WIDTH, HEIGHT));
            // The same banner without any text draws differently: the Korean glyphs are there.
            let blank = banner(style, &BannerText::default(), &Palette::of(style)).unwrap();
            assert_ne!(with_text.bytes, blank.bytes, "{style:?}: text drew nothing");
            assert!(with_text.bytes.len() > blank.bytes.len(), "{style:?}");
            if let Ok(dir) = std::env::var("BANNER_SAMPLES") {
                std::fs::write(format!("{dir}/{}.png", style.as_str()), &with_text.bytes).unwrap();
            }
        }
    }

    #[test]
    fn palette_takes_only_hex_colours() {
        let p = Palette::of(BannerStyle::Simple).with(Some("#000"), Some("red"), None);
        assert_eq!(p.background, "#000");
        assert_eq!(p.text, Palette::of(BannerStyle::Simple).text);
    }
}
