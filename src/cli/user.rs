//! `strom user scram ...`: SCRAM credentials over DescribeUserScramCredentials and
//! AlterUserScramCredentials (KIP-554), as `kafka-configs.sh --alter --add-config
//! 'SCRAM-SHA-512=[password=…]' --entity-type users` does: the salt is random, the
//! salted password is computed here, and the password never leaves this process.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use strom_client::check;
use strom_protocol::*;

use super::{connect, Common, Table};
use crate::security::scram::{Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

/// `strom user ...`
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// SCRAM credentials (SCRAM-SHA-256, SCRAM-SHA-512).
    #[command(subcommand)]
    Scram(ScramCmd),
}

/// `strom user scram ...`
#[derive(Subcommand, Debug)]
pub enum ScramCmd {
    /// Sets a user's credential for a mechanism (replacing one that exists).
    Set {
        /// The user.
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// The password (or the STROM_SCRAM_PASSWORD variable, which keeps it out of the
        /// process list).
        #[arg(long, env = "STROM_SCRAM_PASSWORD", hide_env_values = true)]
        password: String,
        /// PBKDF2 iterations (Kafka accepts 4096..=16384).
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: u32,
    },
    /// Users and the mechanisms they have credentials for.
    List {
        /// Only these users (default: every user).
        users: Vec<String>,
    },
    /// Deletes a user's credential for a mechanism.
    Delete {
        /// The user.
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
}

fn mechanism(name: &str) -> anyhow::Result<Mechanism> {
    Mechanism::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| anyhow!("mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512"))
}

/// Runs a `strom user` command.
pub async fn user(cmd: UserCmd, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    let UserCmd::Scram(cmd) = cmd;
    match cmd {
        ScramCmd::Set { user, mechanism: m, password, iterations } => {
            let m = mechanism(&m)?;
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                bail!("--iterations {iterations}: Kafka accepts {MIN_ITERATIONS}..={MAX_ITERATIONS}");
            }
            let mut salt = [0u8; 32];
            getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness for the salt: {e}"))?;
            let salted = crate::security::scram::salted_password(m, password.as_bytes(), &salt, iterations);
            let req = AlterUserScramCredentialsRequest {
                upsertions: vec![alter_user_scram_credentials_request::ScramCredentialUpsertion {
                    name: user.clone(),
                    mechanism: m.code(),
                    iterations: iterations as i32,
                    salt: salt.to_vec().into(),
                    salted_password: salted.into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            alter(&mut client, req).await?;
            println!("set the {} credential of {user} ({iterations} iterations)", m.name());
        }
        ScramCmd::Delete { user, mechanism: m } => {
            let m = mechanism(&m)?;
            let req = AlterUserScramCredentialsRequest {
                deletions: vec![alter_user_scram_credentials_request::ScramCredentialDeletion {
                    name: user.clone(),
                    mechanism: m.code(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            alter(&mut client, req).await?;
            println!("deleted the {} credential of {user}", m.name());
        }
        ScramCmd::List { users } => {
            let req = DescribeUserScramCredentialsRequest {
                users: (!users.is_empty()).then(|| {
                    users
                        .iter()
                        .map(|u| describe_user_scram_credentials_request::UserName {
                            name: u.clone(),
                            ..Default::default()
                        })
                        .collect()
                }),
                ..Default::default()
            };
            let (resp, _): (DescribeUserScramCredentialsResponse, _) = client.call(0, &req).await?;
            check(resp.error_code, "DescribeUserScramCredentials", resp.error_message.as_deref())?;
            let mut t = Table::new(&["USER", "MECHANISM", "ITERATIONS"]);
            for r in resp.results {
                check(r.error_code, &format!("user {}", r.user), r.error_message.as_deref())?;
                for info in r.credential_infos {
                    let name = Mechanism::from_code(info.mechanism).map_or("UNKNOWN", Mechanism::name);
                    t.row(vec![r.user.clone(), name.to_string(), info.iterations.to_string()]);
                }
            }
            t.print(c.output)?;
        }
    }
    Ok(())
}

async fn alter(client: &mut strom_client::Client, req: AlterUserScramCredentialsRequest) -> anyhow::Result<()> {
    let (resp, _): (AlterUserScramCredentialsResponse, _) = client.call(0, &req).await?;
    for r in resp.results {
        check(r.error_code, &format!("user {}", r.user), r.error_message.as_deref())?;
    }
    Ok(())
}
