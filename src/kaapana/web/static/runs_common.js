// What the run pages share: which states are still moving, and tasks done of total.
export const ACTIVE_RUN_STATES = new Set(["queued", "running"]);
const OPEN_TASK_STATES = ["pending", "queued", "running"];

export function progress(counts) {
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const open = OPEN_TASK_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
  return `${total - open}/${total}`;
}

export function stateBadge(element, state) {
  element.className = `state state-${state}`;
  element.textContent = state;
}
