//! Files into a container on the destination through the engine's archive API.

use super::{Destination, engine_failure};
use crate::Failure;

/// A tar archive of `(name, contents)` files with `mode`, owned by root.
pub fn archive<'f>(
    files: impl IntoIterator<Item = (&'f str, &'f [u8])>,
    mode: u32,
) -> Result<Vec<u8>, Failure> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, contents).map_err(|e| anyhow::anyhow!("tar: {e}"))?;
    }
    Ok(tar.into_inner().map_err(|e| anyhow::anyhow!("tar: {e}"))?)
}

/// Writes an archive's files into `target` (`container:/path`) on the destination through the
/// engine's archive API (`docker cp -`, the archive on standard input: no value is ever on a
/// command line); `what` names the step in an error.
pub async fn copy_in(dest: &Destination, target: &str, archive: &[u8], what: &str) -> Result<(), Failure> {
    match put(&dest.engine, target, archive).await? {
        None => Ok(()),
        Some(stderr) => Err(engine_failure(dest, what, &stderr)),
    }
}

/// [`copy_in`] on any engine: `None` when it worked, else what `docker cp` said.
pub async fn put(engine: &super::Engine, target: &str, archive: &[u8]) -> Result<Option<Vec<u8>>, Failure> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = engine
        .docker()
        .args(["cp", "-", target])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("docker cp: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(archive).await.map_err(|e| anyhow::anyhow!("docker cp: {e}"))?;
    }
    let out = child.wait_with_output().await.map_err(|e| anyhow::anyhow!("docker cp: {e}"))?;
    Ok((!out.status.success()).then_some(out.stderr))
}
