/**
 * The most recent log lines, for the original's /api/logs/recent: bounded
 * by bytes, oldest dropped first. Logs are low-volume (no line per
 * request), so keeping them costs a string per line.
 */
export class RecentLines {
  private lines: string[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  push(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    while (this.bytes > this.maxBytes && this.head < this.lines.length - 1) {
      this.bytes -= this.lines[this.head]!.length;
      this.head++;
    }
    // Compacted now and then, so the array does not grow with every line ever logged.
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }

  text(): string {
    return this.lines.slice(this.head).join('');
  }

  clear(): void {
    this.lines = [];
    this.head = 0;
    this.bytes = 0;
  }
}
