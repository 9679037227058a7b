//! A set of file writes applied all together or not at all.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// New files and new contents of existing ones, relative to the project's root, each with
/// the permissions to give it (`None`: a new file's default, an existing file's own).
#[derive(Debug, Default)]
pub(crate) struct Changes {
    files: Vec<(PathBuf, Vec<u8>, Option<u32>)>,
}

impl Changes {
    /// Adds a file to write (a new one, or an existing one's new content).
    pub(crate) fn write(&mut self, path: impl Into<PathBuf>, content: String) {
        self.files.push((path.into(), content.into_bytes(), None));
    }

    /// Adds a file to write with the given permission bits (an executable script, say).
    pub(crate) fn write_with_mode(&mut self, path: impl Into<PathBuf>, content: Vec<u8>, mode: u32) {
        self.files.push((path.into(), content, Some(mode)));
    }

    /// The paths it writes, in order.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _, _)| p.as_path())
    }

    /// Writes every file under `root`, or none: each goes to a temporary file beside its
    /// target first, and only when all are written are they renamed into place. A failure
    /// while renaming puts back what was already replaced and removes what was new.
    pub(crate) fn apply(self, root: &Path) -> anyhow::Result<()> {
        let mut staged: Vec<(PathBuf, PathBuf, Option<Vec<u8>>)> = Vec::new();
        let mut made_dirs: Vec<PathBuf> = Vec::new();
        let result = (|| -> anyhow::Result<()> {
            for (path, content, mode) in &self.files {
                let target = root.join(path);
                let dir =
                    target.parent().ok_or_else(|| anyhow::anyhow!("{} has no folder", path.display()))?;
                for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
                    if !ancestor.exists() {
                        std::fs::create_dir(ancestor)?;
                        made_dirs.push(ancestor.to_path_buf());
                    }
                }
                let old = match std::fs::read(&target) {
                    Ok(bytes) => Some(bytes),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", target.display())),
                };
                let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let temp = target.with_file_name(format!("{name}.slipway-new"));
                std::fs::write(&temp, content)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", temp.display()))?;
                staged.push((temp.clone(), target.clone(), old));
                // The given mode, else the replaced file's (a script stays executable).
                let kept = std::fs::metadata(&target).ok().map(|m| m.permissions().mode());
                if let Some(mode) = mode.or(kept) {
                    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            undo(&staged, 0, &made_dirs);
            return Err(e);
        }
        for (i, (temp, target, _)) in staged.iter().enumerate() {
            if let Err(e) = std::fs::rename(temp, target) {
                undo(&staged, i, &made_dirs);
                return Err(anyhow::anyhow!("cannot write {}: {e}", target.display()));
            }
        }
        Ok(())
    }
}

/// Restores the first `renamed` targets, removes every temporary file and the new folders.
fn undo(staged: &[(PathBuf, PathBuf, Option<Vec<u8>>)], renamed: usize, made_dirs: &[PathBuf]) {
    for (i, (temp, target, old)) in staged.iter().enumerate() {
        let _ = std::fs::remove_file(temp);
        if i < renamed {
            let _ = match old {
                Some(bytes) => std::fs::write(target, bytes),
                None => std::fs::remove_file(target),
            };
        }
    }
    for dir in made_dirs.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::Changes;

    #[test]
    fn a_failed_write_leaves_every_file_as_it_was() {
        let root = std::env::temp_dir().join(format!("slipway-changes-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).expect("root");
        std::fs::write(root.join("kept.txt"), "before").expect("write");
        // A file where a folder must go makes the second write fail.
        std::fs::write(root.join("blocker"), "a file").expect("write");
        let mut changes = Changes::default();
        changes.write("kept.txt", "after".into());
        changes.write("new/dir/file.txt", "new".into());
        changes.write("blocker/inside.txt", "cannot".into());
        assert!(changes.apply(&root).is_err());
        assert_eq!(std::fs::read_to_string(root.join("kept.txt")).expect("read"), "before");
        assert!(!root.join("new").exists(), "no folder left behind");
        assert!(!root.join("kept.txt.slipway-new").exists(), "no temporary file left behind");

        let mut changes = Changes::default();
        changes.write("kept.txt", "after".into());
        changes.write("new/dir/file.txt", "new".into());
        changes.apply(&root).expect("applies");
        assert_eq!(std::fs::read_to_string(root.join("kept.txt")).expect("read"), "after");
        assert_eq!(std::fs::read_to_string(root.join("new/dir/file.txt")).expect("read"), "new");
        let _ = std::fs::remove_dir_all(root);
    }
}
