//! The assignment: bundles (rows) to riders (columns) or to "no rider this round", on
//! integer costs, solved with pathfinding's Hungarian algorithm (`kuhn_munkres_min`).
//!
//! Only candidate pairs carry real costs. Rows and columns linked by candidate pairs form
//! independent groups (connected components); each is solved alone, so a round costs
//! what its busiest neighbourhood costs, not the cube of the whole city.
//!
//! Each row gets its own "wait" column, priced by the caller. A forced row (an order at its
//! due time) has its wait priced above any possible sum of real costs in its group, so
//! the solver first gives riders to as many forced rows as it can, and only then
//! minimises cost.

use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;

/// Real costs are clamped to ±this (about 11.5 days in milliseconds), so the forced and
/// forbidden prices built on top of them fit in i64 for any group the solver can finish.
pub const COST_CAP: i64 = 1_000_000_000;

/// Bits below a weight's price that break its ties: room for the sum of a million pair
/// costs of at most `COST_CAP` each.
const TIE_BITS: u32 = 50;

/// "No rider this round" for one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub cost: i64,
    /// The row must take a rider if any candidate is left for it.
    pub forced: bool,
}

/// A sparse assignment problem.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    pub columns: usize,
    /// Per row: (column, cost) of each candidate pair. A column at most once per row.
    pub edges: Vec<Vec<(usize, i64)>>,
    /// Per row: the price of leaving it unassigned.
    pub wait: Vec<Wait>,
}

impl Problem {
    pub fn rows(&self) -> usize {
        self.edges.len()
    }

    /// The objective the solver minimises, lexicographically: forced rows left waiting,
    /// then the sum of costs (chosen edges, and the waits of rows left waiting).
    pub fn objective(&self, assignment: &[Option<usize>]) -> (usize, i64) {
        let mut forced_waiting = 0;
        let mut total = 0i64;
        for (row, chosen) in assignment.iter().enumerate() {
            match chosen {
                Some(col) => {
                    let cost = self.edges[row]
                        .iter()
                        .find(|(c, _)| c == col)
                        .map(|&(_, cost)| cost)
                        .expect("assigned only along candidate pairs");
                    total += cost.clamp(-COST_CAP, COST_CAP);
                }
                None => {
                    forced_waiting += usize::from(self.wait[row].forced);
                    total += self.wait[row].cost.clamp(-COST_CAP, COST_CAP);
                }
            }
        }
        (forced_waiting, total)
    }
}

/// The column each row gets (`None`: waits this round). No column is used twice, and a row
/// only ever gets one of its candidate columns.
pub fn solve(problem: &Problem) -> Vec<Option<usize>> {
    let useful = useful_pairs(problem);
    let mut assignment = vec![None; useful.rows()];
    for group in components(&useful) {
        solve_group(&useful, &group, &mut assignment);
    }
    assignment
}

/// The problem without pairs that cost at least the row's wait when the row is not forced.
/// Dropping them keeps the optimum (such a row can wait instead at no extra cost, which
/// only frees the rider), and it cuts the links that would chain whole cities into one
/// group: most pairs of an order that can wait are worse than waiting.
fn useful_pairs(problem: &Problem) -> Problem {
    let edges = problem
        .edges
        .iter()
        .zip(&problem.wait)
        .map(|(edges, wait)| {
            let wait_cost = wait.cost.clamp(-COST_CAP, COST_CAP);
            edges
                .iter()
                .copied()
                .filter(|&(_, cost)| wait.forced || cost.clamp(-COST_CAP, COST_CAP) < wait_cost)
                .collect()
        })
        .collect();
    Problem {
        columns: problem.columns,
        edges,
        wait: problem.wait.clone(),
    }
}

/// A connected group: its rows, and its columns (as indices of the whole problem).
#[derive(Debug, Default)]
struct Group {
    rows: Vec<usize>,
    columns: Vec<usize>,
}

/// Union-find over rows (0..rows) and columns (rows..rows + columns).
fn components(problem: &Problem) -> Vec<Group> {
    let rows = problem.rows();
    let mut parent: Vec<usize> = (0..rows + problem.columns).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (row, edges) in problem.edges.iter().enumerate() {
        for &(col, _) in edges {
            let (a, b) = (find(&mut parent, row), find(&mut parent, rows + col));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of_root = vec![usize::MAX; rows + problem.columns];
    for row in 0..rows {
        let root = find(&mut parent, row);
        if group_of_root[root] == usize::MAX {
            group_of_root[root] = groups.len();
            groups.push(Group::default());
        }
        groups[group_of_root[root]].rows.push(row);
    }
    for col in 0..problem.columns {
        let root = find(&mut parent, rows + col);
        // A column no row can use belongs to no group: nobody needs it.
        if group_of_root[root] != usize::MAX {
            groups[group_of_root[root]].columns.push(col);
        }
    }
    groups
}

fn solve_group(problem: &Problem, group: &Group, assignment: &mut [Option<usize>]) {
    if group.columns.is_empty() {
        return; // every row waits: there is no rider to give
    }
    let n_rows = group.rows.len();
    let n_riders = group.columns.len();
    let local_col = |col: usize| group.columns.binary_search(&col).ok();
    let max_abs = group
        .rows
        .iter()
        .flat_map(|&r| {
            problem.edges[r]
                .iter()
                .map(|&(_, c)| c)
                .chain(std::iter::once(problem.wait[r].cost))
        })
        .map(|c| c.clamp(-COST_CAP, COST_CAP).abs())
        .max()
        .unwrap_or(0);
    // Two assignments' real costs differ by at most 2 · rows · max_abs, so a forced price
    // above that makes one more forced row served worth more than any saving elsewhere.
    let forced = (max_abs + 1) * 2 * (n_rows as i64 + 1);
    // Forbidden pairs cost more than any row's own wait, so they are never chosen: moving
    // such a row to its own (always free) wait column would be cheaper.
    let forbidden = 2 * (forced + max_abs) + 1;
    let row_wait = |row: usize| {
        let wait = problem.wait[row];
        let wait_cost = wait.cost.clamp(-COST_CAP, COST_CAP);
        if wait.forced {
            forced + wait_cost
        } else {
            wait_cost
        }
    };
    // Ties (the wait price is often "the same rider a round later", so two orders can save
    // exactly as much) go to the cheaper pairs, the same whichever way the matrix is laid
    // out: a weight is (price << TIE_BITS) + the pair's own cost, in i128.
    let weight =
        |price: i64, pair_cost: i64| (i128::from(price) << TIE_BITS) + i128::from(pair_cost);
    let forbidden = i128::from(forbidden) << TIE_BITS;
    if n_rows <= n_riders {
        // Columns: the group's riders, then one wait column per row (row k → n_riders + k).
        let mut weights = Matrix::new(n_rows, n_riders + n_rows, forbidden);
        for (k, &row) in group.rows.iter().enumerate() {
            for &(col, cost) in &problem.edges[row] {
                if let Some(local) = local_col(col) {
                    let cost = cost.clamp(-COST_CAP, COST_CAP);
                    weights[(k, local)] = weight(cost, cost);
                }
            }
            weights[(k, n_riders + k)] = weight(row_wait(row), 0);
        }
        let (_, chosen) = kuhn_munkres_min(&weights);
        for (k, &local) in chosen.iter().enumerate() {
            if local < n_riders && weights[(k, local)] != forbidden {
                assignment[group.rows[k]] = Some(group.columns[local]);
            }
        }
    } else {
        // More rows than riders (a busy day): the same problem seen from the riders, so
        // the solver's cubic term grows with the few riders, not the many orders. Every
        // row's wait is paid up front; a rider taking a row earns back that wait (its
        // price is cost − wait), and each rider has its own idle column at 0, so a
        // forbidden pair (priced above 0) is never better than staying idle.
        let mut weights = Matrix::new(n_riders, n_rows + n_riders, forbidden);
        for (k, &row) in group.rows.iter().enumerate() {
            let wait = row_wait(row);
            for &(col, cost) in &problem.edges[row] {
                if let Some(local) = local_col(col) {
                    let cost = cost.clamp(-COST_CAP, COST_CAP);
                    weights[(local, k)] = weight(cost - wait, cost);
                }
            }
        }
        for j in 0..n_riders {
            weights[(j, n_rows + j)] = 0;
        }
        let (_, chosen) = kuhn_munkres_min(&weights);
        for (j, &k) in chosen.iter().enumerate() {
            if k < n_rows && weights[(j, k)] != forbidden {
                assignment[group.rows[k]] = Some(group.columns[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn wait(cost: i64, forced: bool) -> Wait {
        Wait { cost, forced }
    }

    /// Every assignment, by trying each row on its wait and on each free candidate.
    fn brute_force(problem: &Problem) -> (usize, i64) {
        fn go(
            p: &Problem,
            row: usize,
            used: &mut Vec<bool>,
            current: &mut Vec<Option<usize>>,
            best: &mut (usize, i64),
        ) {
            if row == p.rows() {
                *best = (*best).min(p.objective(current));
                return;
            }
            current.push(None);
            go(p, row + 1, used, current, best);
            current.pop();
            for &(col, _) in &p.edges[row] {
                if !used[col] {
                    used[col] = true;
                    current.push(Some(col));
                    go(p, row + 1, used, current, best);
                    current.pop();
                    used[col] = false;
                }
            }
        }
        let mut best = (usize::MAX, i64::MAX);
        go(
            problem,
            0,
            &mut vec![false; problem.columns],
            &mut Vec::new(),
            &mut best,
        );
        best
    }

    fn random_problem(rng: &mut rand::rngs::StdRng) -> Problem {
        let rows = rng.gen_range(1..=6);
        let columns = rng.gen_range(1..=5);
        let edges = (0..rows)
            .map(|_| {
                let mut row = Vec::new();
                for col in 0..columns {
                    if rng.gen_bool(0.5) {
                        row.push((col, rng.gen_range(0..2_000_000)));
                    }
                }
                row
            })
            .collect();
        let wait = (0..rows)
            .map(|_| Wait {
                cost: rng.gen_range(-10_000..2_500_000),
                forced: rng.gen_bool(0.3),
            })
            .collect();
        Problem {
            columns,
            edges,
            wait,
        }
    }

    fn assert_valid(problem: &Problem, assignment: &[Option<usize>]) {
        let mut used = vec![false; problem.columns];
        for (row, chosen) in assignment.iter().enumerate() {
            if let Some(col) = chosen {
                assert!(problem.edges[row].iter().any(|(c, _)| c == col));
                assert!(!used[*col], "column {col} used twice");
                used[*col] = true;
            }
        }
    }

    #[test]
    fn hungarian_equals_brute_force_on_small_random_instances() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..400 {
            let problem = random_problem(&mut rng);
            let assignment = solve(&problem);
            assert_valid(&problem, &assignment);
            assert_eq!(
                problem.objective(&assignment),
                brute_force(&problem),
                "case {case}: {problem:?}"
            );
        }
    }

    #[test]
    fn a_forced_row_takes_the_rider_even_at_a_high_cost() {
        let problem = Problem {
            columns: 1,
            edges: vec![vec![(0, 10)], vec![(0, 900_000_000)]],
            wait: vec![wait(1_000_000, false), wait(0, true)],
        };
        assert_eq!(solve(&problem), vec![None, Some(0)]);
    }

    #[test]
    fn a_row_without_candidates_waits_and_unused_columns_are_ignored() {
        let problem = Problem {
            columns: 3,
            edges: vec![vec![], vec![(2, 5)]],
            wait: vec![wait(100, true), wait(100, false)],
        };
        assert_eq!(solve(&problem), vec![None, Some(2)]);
    }

    #[test]
    fn pairs_worse_than_waiting_do_not_link_neighbourhoods() {
        let open = wait(100, false);
        let problem = Problem {
            columns: 2,
            // Row 0 reaches column 1 only at a price above its wait.
            edges: vec![vec![(0, 10), (1, 500)], vec![(1, 10)]],
            wait: vec![open, open],
        };
        assert_eq!(components(&problem).len(), 1);
        assert_eq!(components(&useful_pairs(&problem)).len(), 2);
        assert_eq!(solve(&problem), vec![Some(0), Some(1)]);
        // A forced row keeps every pair: it must take a rider if one is left.
        let forced = Problem {
            edges: vec![vec![(1, 500)], vec![(1, 10)]],
            wait: vec![wait(100, true), open],
            ..problem
        };
        assert_eq!(components(&useful_pairs(&forced)).len(), 1);
        assert_eq!(solve(&forced), vec![Some(1), None]);
    }

    #[test]
    fn separate_neighbourhoods_are_separate_groups() {
        let problem = Problem {
            columns: 4,
            edges: vec![vec![(0, 1), (1, 2)], vec![(1, 1)], vec![(3, 1)], vec![]],
            wait: vec![wait(50, false); 4],
        };
        let groups = components(&problem);
        let shapes: Vec<(Vec<usize>, Vec<usize>)> = groups
            .iter()
            .map(|g| (g.rows.clone(), g.columns.clone()))
            .collect();
        assert_eq!(
            shapes,
            vec![
                (vec![0, 1], vec![0, 1]),
                (vec![2], vec![3]),
                (vec![3], vec![])
            ]
        );
        assert_eq!(solve(&problem), vec![Some(0), Some(1), Some(3), None]);
    }
}
