//! Avatar images: decode (never trusting the declared type), refuse bombs, crop to a
//! square, resize to 256×256, re-encode. And the deterministic default avatar.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::error::{Error, Result};

pub const SIZE: u32 = 256;
const MAX_PIXELS: u64 = 40_000_000;

/// A processed avatar: content type, encoded bytes and a content hash.
#[derive(Debug)]
pub struct Processed {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    pub hash: String,
}

/// Decodes and re-encodes an uploaded image. Errors: `too_large` for more than
/// `max_bytes` or 40 megapixels, `invalid` for anything that is not a PNG, JPEG, GIF or
/// WebP image that decodes.
pub fn process(bytes: &[u8], max_bytes: usize) -> Result<Processed> {
    if bytes.len() > max_bytes {
        return Err(Error::TooLarge(format!(
            "avatar is larger than {}",
            crate::util::human_size(max_bytes)
        )));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| invalid_image())?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {}
        _ => {
            return Err(Error::invalid(
                "avatar",
                "avatar must be a PNG, JPEG, GIF or WebP image",
            ));
        }
    }
    // Look at the declared dimensions before decoding a single pixel: a tiny file can
    // claim a huge canvas (decompression bomb).
    let (w, h) = reader.into_dimensions().map_err(|_| invalid_image())?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Error::TooLarge(
            "avatar is larger than 40 megapixels".into(),
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| invalid_image())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(w.max(1));
    limits.max_image_height = Some(h.max(1));
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|_| invalid_image())?;
    let img = img.resize_to_fill(SIZE, SIZE, image::imageops::FilterType::Lanczos3);
    encode(img)
}

fn invalid_image() -> Error {
    Error::invalid("avatar", "avatar is not a readable image")
}

fn encode(img: DynamicImage) -> Result<Processed> {
    let mut out = Cursor::new(Vec::new());
    let content_type = if img.color().has_alpha() {
        img.to_rgba8()
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| Error::Internal(e.into()))?;
        "image/png"
    } else {
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88);
        img.to_rgb8()
            .write_with_encoder(enc)
            .map_err(|e| Error::Internal(e.into()))?;
        "image/jpeg"
    };
    let bytes = out.into_inner();
    let hash = crate::util::content_hash(&bytes);
    Ok(Processed {
        content_type,
        bytes,
        hash,
    })
}

/// Decodes a `data:image/...;base64,...` URL (guest sign-up) into bytes.
pub fn decode_data_url(url: &str, max_bytes: usize) -> Result<Vec<u8>> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| Error::invalid("avatar", "avatar must be a base64 data: URL"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| Error::invalid("avatar", "avatar must be a base64 data: URL"))?;
    if !meta.ends_with(";base64") {
        return Err(Error::invalid(
            "avatar",
            "avatar must be a base64 data: URL",
        ));
    }
    // base64 is 4/3 of the bytes: refuse before decoding anything oversized.
    if data.len() / 4 * 3 > max_bytes + 3 {
        return Err(Error::TooLarge(format!(
            "avatar is larger than {}",
            crate::util::human_size(max_bytes)
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| Error::invalid("avatar", "avatar data URL is not valid base64"))
}

/// The version tag of a user's default avatar (part of its URL).
pub fn default_version(username: &str) -> String {
    format!("d{}", &crate::util::content_hash(username.as_bytes())[..8])
}

/// Initials on a colour derived from the name, as SVG.
pub fn default_svg(username: &str) -> String {
    let hash = crate::util::content_hash(username.as_bytes());
    let hue = u32::from_str_radix(&hash[..4], 16).unwrap_or(0) % 360;
    let parts: Vec<&str> = username
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .collect();
    let initials: String = match parts.as_slice() {
        [a, b, ..] => a.chars().take(1).chain(b.chars().take(1)).collect(),
        [a] => a.chars().take(2).collect(),
        [] => "?".into(),
    };
    // Usernames are [A-Za-z0-9_.-], so the initials need no escaping; keep it so.
    let initials: String = initials
        .to_uppercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"256\" height=\"256\" viewBox=\"0 0 256 256\">\
<rect width=\"256\" height=\"256\" fill=\"hsl({hue},55%,45%)\"/>\
<text x=\"50%\" y=\"50%\" dy=\".35em\" text-anchor=\"middle\" fill=\"#fff\" \
font-family=\"system-ui,-apple-system,Segoe UI,Roboto,sans-serif\" font-size=\"104\" \
font-weight=\"600\">{initials}</text></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn resizes_to_square() {
        let p = process(&png(300, 120), 5 << 20).unwrap();
        let img = image::load_from_memory(&p.bytes).unwrap();
        assert_eq!((img.width(), img.height()), (256, 256));
        assert_eq!(p.content_type, "image/jpeg");
    }

    #[test]
    fn refuses_non_images_and_oversize() {
        assert_eq!(process(b"hello", 5 << 20).unwrap_err().code(), "invalid");
        assert_eq!(process(&png(10, 10), 10).unwrap_err().code(), "too_large");
        let mut broken = png(10, 10);
        broken.truncate(40);
        assert_eq!(process(&broken, 5 << 20).unwrap_err().code(), "invalid");
    }

    #[test]
    fn data_urls() {
        let url = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png(4, 4))
        );
        assert!(decode_data_url(&url, 5 << 20).is_ok());
        assert!(decode_data_url("data:image/png,abc", 5 << 20).is_err());
        assert!(decode_data_url("https://x", 5 << 20).is_err());
    }

    #[test]
    fn default_avatar_is_deterministic() {
        assert_eq!(default_svg("alice"), default_svg("alice"));
        assert!(default_svg("john.doe").contains(">JD<"));
        assert_eq!(default_version("a"), default_version("a"));
    }
}
