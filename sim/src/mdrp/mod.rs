//! The Grubhub Meal Delivery Routing Problem benchmark (grubhub/mdrplib) as plain data:
//! instances in, solutions out, the evaluator's metrics, the published figures, and a
//! small instance of our own ([`synthetic`]) so a fresh clone can replay without the data.

pub mod check;
pub mod instance;
pub mod metrics;
pub mod published;
pub mod solution;
pub mod synthetic;

use std::path::Path;

/// Rows of a whitespace-separated file with one header line.
fn read_rows(path: &Path, min_fields: usize) -> Result<Vec<Vec<String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rows(&text, path, min_fields)
}

/// The rows of `text` (read from `path`, named in errors) after its header line.
fn rows(text: &str, path: &Path, min_fields: usize) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < min_fields {
            return Err(format!(
                "{}:{}: expected {min_fields} fields, found {}",
                path.display(),
                i + 1,
                fields.len()
            ));
        }
        rows.push(fields);
    }
    Ok(rows)
}

fn num<T: std::str::FromStr>(s: &str, path: &Path, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{}: {what} is not a number: {s:?}", path.display()))
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    pub fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("dispatchd-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Two restaurants, three orders, two couriers; 100 m per minute.
    pub fn tiny(dir: &Path) {
        std::fs::write(
            dir.join("instance_parameters.txt"),
            "meters_per_minute\tpickup service minutes\tdropoff service minutes\ttarget click-to-door\tmaximum click-to-door\tpay per order\tguaranteed pay per hour\n100\t4\t4\t40\t90\t10\t15\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("restaurants.txt"),
            "restaurant\tx\ty\nr1\t0\t0\nr2\t1000\t0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("orders.txt"),
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\t500\t10\tr1\t20\no2\t1000\t1050\t12\tr2\t25\no3\t0\t0\t30\tr1\t40\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("couriers.txt"),
            "courier\tx\ty\ton_time\toff_time\nc1\t0\t300\t0\t120\nc2\t1000\t0\t0\t60\n",
        )
        .unwrap();
    }
}
