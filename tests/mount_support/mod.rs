//! Small file systems the tests mount to fill up: a tmpfs of a given size, or an ext4 on a loop
//! device (which takes direct writes, where tmpfs takes none). Both need root; each is
//! unmounted when its guard is dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount point, unmounted when dropped.
pub struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A tmpfs of `size` (as `mount -o size=` takes it: `1m`, `3m`) at `dir/name`.
pub fn small_tmpfs(dir: &Path, name: &str, size: &str) -> (PathBuf, Mounted) {
    let mnt = dir.join(name);
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount must be available (tests run as root)");
    assert!(st.success(), "cannot mount a tmpfs (tests need root)");
    (mnt.clone(), Mounted(mnt))
}

/// An ext4 of `mib` MiB on a loop device under `dir`.
pub fn small_ext4(dir: &Path, mib: u32) -> (PathBuf, Mounted) {
    let image = dir.join("ext4.img");
    let f = std::fs::File::create(&image).unwrap();
    f.set_len(u64::from(mib) << 20).unwrap();
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-O", "^has_journal"])
        .arg(&image)
        .status()
        .expect("mkfs.ext4 (e2fsprogs) must be installed");
    assert!(st.success(), "mkfs.ext4 failed");
    let mnt = dir.join("ext4");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-o", "loop"])
        .arg(&image)
        .arg(&mnt)
        .status()
        .expect("mount must be available (tests run as root)");
    assert!(st.success(), "cannot mount a loop device (tests need root)");
    (mnt.clone(), Mounted(mnt))
}
