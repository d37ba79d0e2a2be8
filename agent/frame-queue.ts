/**
 * A fixed-capacity FIFO that drops its oldest item when full. A Pi has little
 * memory and the newest frames say most about the door now, so while the
 * server is away the agent keeps the latest `capacity` frames and counts the rest.
 */
export class FrameQueue<T> {
  /** Items dropped because the queue was full, ever. */
  dropped = 0
  private readonly slots: Array<T | undefined>
  private head = 0
  private size = 0

  constructor (readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be an integer ≥ 1, got ${capacity}`)
    // a ring buffer: push and shift are O(1) and the array never grows past capacity
    this.slots = new Array<T | undefined>(capacity)
  }

  /** Items waiting. */
  get length (): number {
    return this.size
  }

  /** Whether the next push drops the oldest item. */
  get full (): boolean {
    return this.size === this.capacity
  }

  /**
   * Appends `item`; when full, the oldest item is dropped (and counted) first.
   * @returns the dropped item, if any
   */
  push (item: T): T | undefined {
    let dropped: T | undefined
    if (this.size === this.capacity) {
      dropped = this.shiftOne()
      this.dropped++
    }
    this.slots[(this.head + this.size) % this.capacity] = item
    this.size++
    return dropped
  }

  /** Removes and returns up to `count` of the oldest items, oldest first. */
  take (count: number): T[] {
    const taken: T[] = []
    while (taken.length < count && this.size > 0) taken.push(this.shiftOne() as T)
    return taken
  }

  /**
   * Puts `items` (taken earlier, oldest first) back at the front, as far as
   * there is room; the newest of the queue are never pushed out for them.
   * @returns how many did not fit (counted as dropped)
   */
  unshift (items: readonly T[]): number {
    const room = this.capacity - this.size
    const kept = items.slice(Math.max(0, items.length - room))
    for (let i = kept.length - 1; i >= 0; i--) {
      this.head = (this.head - 1 + this.capacity) % this.capacity
      this.slots[this.head] = kept[i]
      this.size++
    }
    const lost = items.length - kept.length
    this.dropped += lost
    return lost
  }

  private shiftOne (): T | undefined {
    if (this.size === 0) return undefined
    const item = this.slots[this.head]
    this.slots[this.head] = undefined // let the frame be collected
    this.head = (this.head + 1) % this.capacity
    this.size--
    return item
  }
}
