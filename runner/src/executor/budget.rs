//! The machine's cpu and memory as a budget that workers reserve their
//! algorithm's `resources` from, so heavy algorithms don't oversubscribe
//! the machine.

use std::sync::Mutex;

// Sizes are written as an algorithm's `resources.mem` is; the budget
// (`serve --mem-budget`) reads them the same way.
pub use crate::algorithm::parse_mem;

pub fn show_mem(bytes: u64) -> String {
    format!("{:.0}Mi", bytes as f64 / (1u64 << 20) as f64)
}

/// What one worker of an algorithm reserves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Need {
    pub cpu: f64,
    pub mem: u64,
}

#[derive(Debug)]
pub struct Budget {
    pub cpu: f64,
    pub mem: u64,
    used: Mutex<Need>,
}

impl Budget {
    pub fn new(cpu: f64, mem: u64) -> Budget {
        Budget { cpu, mem, used: Mutex::new(Need::default()) }
    }

    /// The machine: its CPUs and its physical memory.
    pub fn of_machine() -> Budget {
        let cpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).map(str::to_string))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
            .map(|kb| kb * 1024)
            .unwrap_or(u64::MAX);
        Budget::new(cpu, mem)
    }

    /// A need that can never fit, said plainly.
    pub fn never_fits(&self, need: Need) -> Option<String> {
        if need.cpu > self.cpu + 1e-9 {
            Some(format!("needs cpu {} but the machine's budget is cpu {}", need.cpu, self.cpu))
        } else if need.mem > self.mem {
            Some(format!("needs mem {} but the machine's budget is mem {}", show_mem(need.mem), show_mem(self.mem)))
        } else {
            None
        }
    }

    /// Reserve, or say what is short.
    pub fn reserve(&self, need: Need) -> Result<(), String> {
        let mut used = self.used.lock().expect("budget lock");
        let cpu_free = self.cpu - used.cpu;
        let mem_free = self.mem.saturating_sub(used.mem);
        if need.cpu > cpu_free + 1e-9 {
            return Err(format!(
                "waiting for resources: needs cpu {}, {:.2} of {} free",
                need.cpu,
                cpu_free.max(0.0),
                self.cpu
            ));
        }
        if need.mem > mem_free {
            return Err(format!(
                "waiting for resources: needs mem {}, {} of {} free",
                show_mem(need.mem),
                show_mem(mem_free),
                show_mem(self.mem)
            ));
        }
        used.cpu += need.cpu;
        used.mem += need.mem;
        Ok(())
    }

    /// What workers hold now.
    pub fn used(&self) -> Need {
        *self.used.lock().expect("budget lock")
    }

    pub fn release(&self, need: Need) {
        let mut used = self.used.lock().expect("budget lock");
        used.cpu = (used.cpu - need.cpu).max(0.0);
        used.mem = used.mem.saturating_sub(need.mem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_or_say_what_is_short() {
        let b = Budget::new(2.0, 1 << 30);
        let need = Need { cpu: 1.5, mem: 256 << 20 };
        assert!(b.reserve(need).is_ok());
        let short = b.reserve(need).unwrap_err();
        assert!(short.contains("needs cpu 1.5") && short.contains("0.50 of 2 free"), "{short}");
        b.release(need);
        assert!(b.reserve(need).is_ok());
        assert!(b.never_fits(Need { cpu: 3.0, mem: 0 }).unwrap().contains("budget is cpu 2"));
    }
}
