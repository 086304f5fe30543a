//! `rs256-auth keys generate`: RSA key pairs for access and refresh tokens, with no website
//! or openssl needed.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub struct KeygenOptions {
    pub dir: PathBuf,
    pub bits: u32,
    pub force: bool,
}

impl KeygenOptions {
    /// Parses `[--dir DIR] [--bits 2048|4096] [--force]`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = KeygenOptions {
            dir: PathBuf::from("keys"),
            bits: 2048,
            force: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--dir" => options.dir = args.next().ok_or("--dir needs a folder")?.into(),
                "--bits" => {
                    options.bits = args
                        .next()
                        .and_then(|b| b.parse().ok())
                        .filter(|b| matches!(b, 2048 | 3072 | 4096))
                        .ok_or("--bits takes 2048, 3072 or 4096")?;
                }
                "--force" => options.force = true,
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(options)
    }
}

/// A generated pair as PEM: private PKCS#8, public SPKI.
pub struct PemPair {
    pub private_pem: String,
    pub public_pem: String,
}

pub fn generate_pair(bits: u32) -> Result<PemPair, String> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return Err(format!("unsupported key size {bits}")),
    };
    let pair = KeyPair::generate(size).map_err(|_| "RSA key generation failed".to_owned())?;
    let private = pair
        .as_der()
        .map_err(|_| "cannot encode the private key".to_owned())?;
    let public = pair
        .public_key()
        .as_der()
        .map_err(|_| "cannot encode the public key".to_owned())?;
    Ok(PemPair {
        private_pem: pem("PRIVATE KEY", private.as_ref()),
        public_pem: pem("PUBLIC KEY", public.as_ref()),
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes both pairs into `options.dir` and returns the `app.env` lines.
pub fn run(options: &KeygenOptions) -> Result<String, String> {
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let mut env_lines = String::new();
    for kind in ["access", "refresh"] {
        let pair = generate_pair(options.bits)?;
        write(
            &options.dir.join(format!("{kind}_private.pem")),
            &pair.private_pem,
            options.force,
        )?;
        write(
            &options.dir.join(format!("{kind}_public.pem")),
            &pair.public_pem,
            options.force,
        )?;
        let var = kind.to_uppercase();
        env_lines.push_str(&format!(
            "{var}_TOKEN_PRIVATE_KEY={}\n",
            STANDARD.encode(&pair.private_pem)
        ));
        env_lines.push_str(&format!(
            "{var}_TOKEN_PUBLIC_KEY={}\n",
            STANDARD.encode(&pair.public_pem)
        ));
    }
    Ok(env_lines)
}

fn write(path: &Path, contents: &str, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} exists; pass --force to replace it",
            path.display()
        ));
    }
    std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
    restrict(path)
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if path.to_string_lossy().contains("private") {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> Result<(), String> {
    Ok(())
}
