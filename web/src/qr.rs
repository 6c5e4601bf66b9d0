//! The QR code of the device-login page, drawn here as SVG (no image crates, no script).

use qrcode::{EcLevel, QrCode, render::svg};

/// An `<svg>` element for `text`, dark on light, scaled by its `viewBox`. The SVG is built from
/// the code's modules only; `text` never appears in it.
pub fn svg(text: &str) -> anyhow::Result<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| anyhow::anyhow!("cannot encode the QR code: {e}"))?;
    let document = code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // Inline in HTML: drop the XML declaration.
    let start = document.find("<svg").unwrap_or(0);
    Ok(document[start..].to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_an_svg_without_the_text() {
        let svg = super::svg("http://127.0.0.1:8080/activate?user_code=BCDF-GHJK<script>")
            .expect("encodes");
        assert!(svg.starts_with("<svg"));
        assert!(!svg.contains("script"));
        assert!(!svg.contains("<?xml"));
    }
}
