//! Attachments: uploads are sniffed (never trusting the declared type), images are
//! decoded and thumbnailed, files are stored content-addressed under
//! `<data-dir>/uploads/`, and only members of the message's room (or, before it is
//! sent, the uploader) may fetch them. Unsent uploads are cleaned up after a day.

use std::io::Cursor;
use std::path::PathBuf;

use image::{ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use super::Chat;
use super::error::{Error, OrNotFound, Result};
use crate::model::Attachment;
use crate::store::{AttachmentRecord, UserRecord};
use crate::util::{new_id, now_ms};

const THUMB: u32 = 400;
const MAX_PIXELS: u64 = 40_000_000;
/// Unsent uploads older than this are deleted.
pub const UNSENT_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A processed upload, ready to store.
struct Processed {
    content_type: String,
    sha256: String,
    width: Option<i64>,
    height: Option<i64>,
    thumb: Option<(String, Vec<u8>)>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Images shown inline; everything else is served as a download.
pub fn is_safe_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// A file name without directories or control characters, at most 200 characters.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// A declared MIME type, kept only if it is well-formed; never an image type (images
/// are recognised by their bytes).
fn clean_type(declared: Option<&str>) -> String {
    let t = declared
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/.+-".contains(c))
    });
    if ok && !t.starts_with("image/") {
        t
    } else {
        "application/octet-stream".into()
    }
}

fn process(bytes: &[u8], declared: Option<&str>) -> Result<Processed> {
    if bytes.is_empty() {
        return Err(Error::invalid("file", "the file is empty"));
    }
    // Programs are not chat content: refuse Windows, Linux and macOS executables.
    let exe = bytes.starts_with(b"MZ")
        || bytes.starts_with(b"\x7fELF")
        || bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || bytes.starts_with(&[0xfe, 0xed, 0xfa, 0xcf]);
    if exe {
        return Err(Error::invalid("file", "executable files are not accepted"));
    }
    let sha256 = sha256_hex(bytes);
    let format = image::guess_format(bytes).ok().filter(|f| {
        matches!(
            f,
            ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
        )
    });
    let declared_image = declared
        .is_some_and(|d| d.trim().to_ascii_lowercase().starts_with("image/"))
        && !declared.is_some_and(|d| d.contains("svg"));
    let Some(format) = format else {
        if declared_image {
            return Err(Error::invalid(
                "file",
                "the file is not a valid PNG, JPEG, GIF or WebP image",
            ));
        }
        return Ok(Processed {
            content_type: clean_type(declared),
            sha256,
            width: None,
            height: None,
            thumb: None,
        });
    };
    let bad = || Error::invalid("file", "the image cannot be decoded");
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| bad())?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Error::TooLarge(
            "the image is larger than 40 megapixels".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(w.max(1));
    limits.max_image_height = Some(h.max(1));
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|_| bad())?;
    // Small images keep their size; larger ones shrink to fit THUMB × THUMB.
    let thumb = if w > THUMB || h > THUMB {
        img.thumbnail(THUMB, THUMB)
    } else {
        img
    };
    let mut out = Cursor::new(Vec::new());
    if thumb.color().has_alpha() {
        thumb
            .to_rgba8()
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| Error::Internal(e.into()))?;
    } else {
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82);
        thumb
            .to_rgb8()
            .write_with_encoder(enc)
            .map_err(|e| Error::Internal(e.into()))?;
    }
    let thumb = out.into_inner();
    Ok(Processed {
        content_type: format.to_mime_type().to_string(),
        sha256,
        width: Some(i64::from(w)),
        height: Some(i64::from(h)),
        thumb: Some((sha256_hex(&thumb), thumb)),
    })
}

impl Chat {
    fn uploads_dir(&self) -> PathBuf {
        self.settings.data_dir.join("uploads")
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.uploads_dir()
            .join(&sha256[..2.min(sha256.len())])
            .join(sha256)
    }

    /// Writes a blob once (content-addressed): temp file, fsync, rename.
    async fn write_blob(&self, sha256: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.blob_path(sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let dir = path.parent().map(PathBuf::from).unwrap_or_default();
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{}.tmp", new_id()));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::Internal(e.into()))
    }

    /// Stores an upload; it can be attached to one message of its uploader.
    pub async fn upload(
        &self,
        user: &UserRecord,
        name: &str,
        declared_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        if bytes.len() > self.settings.max_attachment_bytes {
            return Err(Error::TooLarge(format!(
                "attachments are limited to {}",
                crate::util::human_size(self.settings.max_attachment_bytes)
            )));
        }
        self.limits.write(&user.id)?;
        let declared = declared_type.map(str::to_string);
        let (p, bytes) = tokio::task::spawn_blocking(move || {
            process(&bytes, declared.as_deref()).map(|p| (p, bytes))
        })
        .await
        .map_err(|e| Error::Internal(e.into()))??;
        let size = bytes.len() as i64;
        self.write_blob(&p.sha256, bytes).await?;
        let thumb_sha = match p.thumb {
            Some((sha, data)) => {
                self.write_blob(&sha, data).await?;
                Some(sha)
            }
            None => None,
        };
        let rec = self
            .store
            .create_attachment(AttachmentRecord {
                id: new_id(),
                uploader_id: user.id.clone(),
                message_id: None,
                name: clean_name(name),
                content_type: p.content_type,
                size,
                sha256: p.sha256,
                width: p.width,
                height: p.height,
                thumb_sha256: thumb_sha,
                created_at: now_ms(),
            })
            .await?;
        Ok(Attachment::from_record(&rec))
    }

    /// Attachments named in a send must exist and be the sender's own uploads.
    /// (Whether they are still unsent is decided atomically by the store.)
    pub(crate) async fn check_attachments(&self, user: &UserRecord, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found = self.store.attachments(ids).await?;
        for id in ids {
            match found.iter().find(|a| a.id == *id) {
                None => {
                    return Err(Error::invalid(
                        "attachment_ids",
                        format!("no attachment {id}"),
                    ));
                }
                Some(a) if a.uploader_id != user.id => {
                    return Err(Error::invalid(
                        "attachment_ids",
                        "you can only attach your own uploads",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The bytes of an attachment (or its thumbnail) for a caller allowed to see it.
    pub async fn attachment_file(
        &self,
        user: &UserRecord,
        id: &str,
        thumbnail: bool,
    ) -> Result<(AttachmentRecord, Vec<u8>)> {
        let a = self
            .store
            .attachments(&[id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("attachment"))?;
        match &a.message_id {
            None if a.uploader_id == user.id => {}
            None => return Err(Error::not_found("attachment")),
            Some(mid) => {
                let msg = self.store.message(mid).await.or_not_found("attachment")?;
                let (_, member) =
                    self.visible_room(user, &msg.room_id)
                        .await
                        .map_err(|e| match e {
                            Error::NotFound(_) => Error::not_found("attachment"),
                            other => other,
                        })?;
                if member.is_none() && !user.is_admin {
                    return Err(Error::forbidden(
                        "only members of the room can open its files",
                    ));
                }
            }
        }
        let sha = if thumbnail {
            a.thumb_sha256
                .clone()
                .ok_or_else(|| Error::not_found("thumbnail"))?
        } else {
            a.sha256.clone()
        };
        let bytes = tokio::fs::read(self.blob_path(&sha)).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found("attachment file")
            } else {
                Error::Internal(e.into())
            }
        })?;
        Ok((a, bytes))
    }

    /// Removes the files of deleted attachments that nothing refers to any more.
    pub(crate) async fn remove_files(&self, gone: &[AttachmentRecord]) {
        for a in gone {
            for sha in std::iter::once(&a.sha256).chain(a.thumb_sha256.as_ref()) {
                match self.store.blob_in_use(sha).await {
                    Ok(false) => {
                        if let Err(e) = tokio::fs::remove_file(self.blob_path(sha)).await
                            && e.kind() != std::io::ErrorKind::NotFound
                        {
                            tracing::warn!(error = %e, "cannot remove an attachment file");
                        }
                    }
                    Ok(true) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot check attachment use"),
                }
            }
        }
    }

    /// Deletes uploads that were never sent within a day.
    pub async fn cleanup_unsent(&self) {
        match self
            .store
            .delete_unsent_attachments(now_ms() - UNSENT_TTL_MS)
            .await
        {
            Ok(gone) => {
                if !gone.is_empty() {
                    tracing::info!(count = gone.len(), "removed unsent uploads");
                }
                self.remove_files(&gone).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot clean up unsent uploads"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_are_cleaned() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name("a\u{7}b.txt"), "ab.txt");
        assert_eq!(clean_type(Some("text/plain; charset=utf-8")), "text/plain");
        assert_eq!(clean_type(Some("image/png")), "application/octet-stream");
        assert_eq!(clean_type(Some("<script>")), "application/octet-stream");
    }

    #[test]
    fn images_are_sniffed_and_thumbnailed() {
        let img = image::RgbImage::from_pixel(800, 200, image::Rgb([9, 9, 9]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        let p = process(&out.into_inner(), Some("application/octet-stream")).unwrap();
        assert_eq!(p.content_type, "image/png");
        assert_eq!((p.width, p.height), (Some(800), Some(200)));
        let (_, thumb) = p.thumb.unwrap();
        let t = image::load_from_memory(&thumb).unwrap();
        assert_eq!((t.width(), t.height()), (400, 100));
        let small = image::RgbImage::from_pixel(64, 32, image::Rgb([9, 9, 9]));
        let mut out = Cursor::new(Vec::new());
        small.write_to(&mut out, ImageFormat::Png).unwrap();
        let (_, thumb) = process(&out.into_inner(), None).unwrap().thumb.unwrap();
        let t = image::load_from_memory(&thumb).unwrap();
        assert_eq!((t.width(), t.height()), (64, 32), "never enlarged");
    }

    #[test]
    fn forbidden_content_is_refused() {
        assert!(process(b"MZ\x90\x00", None).is_err());
        assert!(process(b"\x7fELF\x02", None).is_err());
        assert!(process(b"", None).is_err());
        assert!(process(b"not an image", Some("image/png")).is_err());
        assert_eq!(
            process(b"hello", Some("text/plain")).unwrap().content_type,
            "text/plain"
        );
    }
}
