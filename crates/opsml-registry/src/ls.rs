//! `ls`: cards and their versions, for people (a table) and scripts (`--json`).

use crate::api::{self, CardFilter, CardQuery, REGISTRIES};
use crate::fail::Result;
use crate::http::Remote;
use crate::table;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args)]
pub struct LsArgs {
    /// A registry (model, data, run, pipeline, audit, project) or "all"
    #[arg(long, default_value = "model")]
    pub registry: String,
    #[command(flatten)]
    pub cards: CardFilter,
    /// At most this many cards per registry
    #[arg(long)]
    pub limit: Option<i64>,
    /// JSON on stdout: one object per card
    #[arg(long)]
    pub json: bool,
}

/// The registries an argument names: one, or all of them in copy order.
pub fn registries(name: &str) -> Result<Vec<String>> {
    if name == "all" {
        Ok(REGISTRIES.iter().map(|r| r.to_string()).collect())
    } else {
        api::registry_folder(name)?;
        Ok(vec![name.to_string()])
    }
}

pub fn run(remote: &Remote, args: &LsArgs) -> Result<()> {
    let mut cards = Vec::new();
    for registry in registries(&args.registry)? {
        cards.extend(api::list_cards(
            remote,
            &CardQuery {
                limit: args.limit,
                ..args.cards.query(registry)
            },
        )?);
    }
    if args.json {
        let out: Vec<Value> = cards
            .iter()
            .map(|c| {
                json!({
                    "registry": c.registry,
                    "repository": c.repository(),
                    "name": c.name(),
                    "version": c.version(),
                    "uid": c.uid(),
                    "date": c.date(),
                    "timestamp": c.fields.get("timestamp").cloned().unwrap_or(Value::Null),
                    "tags": c.fields.get("tags").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serialisable")
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cards
        .iter()
        .map(|c| {
            vec![
                c.registry.clone(),
                c.repository().to_string(),
                c.name().to_string(),
                c.version().to_string(),
                c.uid().to_string(),
                c.date().to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(
            &["registry", "repository", "name", "version", "uid", "date"],
            &rows
        )
    );
    Ok(())
}
