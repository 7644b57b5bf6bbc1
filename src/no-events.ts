// What `events` is inside dist/probe (build.ts maps cac's import here). cac's CLI class extends
// EventEmitter only to emit "command:NAME" events, which probe never listens to; Node's events
// module costs several milliseconds of every start. Nothing here may grow listeners.
export class EventEmitter {
  emit(): boolean {
    return false;
  }
}
export default { EventEmitter };
