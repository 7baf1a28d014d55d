/**
 * Where a cache keeps its item-key memo: `<namespace>/<item key>` → sha256
 * and size of the object stored for that item-cache entry's bytes (a
 * `HashMemo` whose stat fields other than size are 0). Written by the store
 * when it adopts referenced entries (store.ts, "Item keys"), read by stage
 * hosts (`stageItemCache`). A module of its own so a stage host can name the
 * file without loading the store.
 *
 * It does not read or write the memo.
 */
import path from 'node:path';

/** The item-key memo file of the cache at `root`. */
export function itemMemoFile(root: string): string {
  return path.join(root, 'item-memo');
}
