#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rs256_auth::config::Settings;
use rs256_auth::domain::{Email, Role};
use rs256_auth::error::AppError;
use rs256_auth::service::admin::{AdminFlows, RoleError};
use rs256_auth::service::keygen::{self, KeygenOptions};
use rs256_auth::service::mfa;
use rs256_auth::service::tokens::Tokens;
use rs256_auth::startup::Application;
use rs256_auth::store::Stores;
use rs256_auth::telemetry;

const USAGE: &str =
    "usage: rs256-auth                 run the service (settings from the environment and app.env)
       rs256-auth keys generate [--dir keys] [--bits 2048|3072|4096] [--force]
       rs256-auth keys mfa-key
                                  print MFA_ENCRYPTION_KEY as in use (set, or derived from the
                                  refresh signing key): set it before changing that key
       rs256-auth users set-role EMAIL user|admin
                                  set a user's role, on the stores the settings name";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => serve().await,
        ["keys", "generate", ..] => generate_keys(&args[2..]),
        ["keys", "mfa-key"] => print_mfa_key(),
        ["users", "set-role", email, role] => set_role(email, role).await,
        ["users", ..] => Err("usage: rs256-auth users set-role EMAIL user|admin".into()),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rs256-auth: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let settings = Settings::load().map_err(|e| e.to_string())?;
    telemetry::init(settings.log_format);
    let app = Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        metrics_port = app.metrics_port(),
        "listening"
    );
    let stopper = app.stopper();
    let signals = stop_signal()?;
    tokio::spawn(async move {
        let name = signals.await;
        tracing::info!(
            signal = name,
            "stopping: no new connections; requests in flight finish (up to 30 s)"
        );
        stopper.stop().await;
    });
    app.run_until_stopped().await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves with the name of the first SIGTERM or SIGINT. Registered before serving, so a
/// signal that comes early is not lost.
fn stop_signal() -> Result<impl Future<Output = &'static str>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
    let mut term = listen(SignalKind::terminate())?;
    let mut int = listen(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// `keys mfa-key`: the second factor's key as a setting line, from the settings as the
/// service reads them.
fn print_mfa_key() -> Result<(), String> {
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let tokens = Tokens::from_settings(&settings)?;
    let key = mfa::key_in_use(&settings.mfa, &tokens);
    println!("MFA_ENCRYPTION_KEY={}", STANDARD.encode(key));
    Ok(())
}

/// `users set-role EMAIL ROLE`, on the stores of the settings, as the service opens them.
/// The user's stamp moves after the change, so running instances authorize by the new role
/// from their next request.
async fn set_role(email: &str, role: &str) -> Result<(), String> {
    let role =
        Role::parse(role).ok_or_else(|| format!("ROLE: must be user or admin, not `{role}`"))?;
    let email = Email::normalize(email);
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let admin = AdminFlows::new(Arc::new(Stores::open(&settings).await?));
    let user = match admin.set_role(&email, role).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(format!("no user with the email {}", email.as_str())),
        // Before changing anything: a role that running instances cannot be told of would be
        // served from their copies of the user for up to a minute.
        Err(RoleError::Unchanged(e)) => {
            return Err(format!("{}; nothing was changed", store_problem(&e)));
        }
        Err(RoleError::Unannounced { user, error }) => {
            return Err(format!(
                "{} is now {}, but running instances could not be told ({}); they see it within a minute",
                user.email,
                role.as_str(),
                store_problem(&error)
            ));
        }
    };
    println!("{} is now {}", user.email, role.as_str());
    Ok(())
}

/// A store's failure, for a person at a terminal: which store, and how.
fn store_problem(e: &AppError) -> String {
    match e.store_error() {
        Some((store, "unavailable")) => format!("{store} cannot be reached or written"),
        Some((store, _)) => format!("{store} failed"),
        None => e.to_string(),
    }
}

fn generate_keys(args: &[String]) -> Result<(), String> {
    let options = KeygenOptions::parse(args)?;
    let lines = keygen::run(&options)?;
    eprintln!(
        "wrote {bits}-bit key pairs to {dir}/; for app.env (or use the *_FILE settings):",
        bits = options.bits,
        dir = options.dir.display()
    );
    print!("{lines}");
    Ok(())
}
