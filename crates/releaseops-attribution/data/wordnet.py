#!/usr/bin/env python3
"""Makes wordnet-related.txt, the WordNet senses the offline attribution
reads paraphrases with (`src/text.rs`, `related`).

    python3 -m venv v && v/bin/pip install snowballstemmer
    v/bin/python wordnet.py /usr/share/wordnet > wordnet-related.txt

The argument is WordNet 3.0's database directory (Debian: `wordnet-base`).
Each output line is a Snowball English stem (the stemmer the crate uses)
and the numbers of the senses it has. A word's senses are its first three
among those seen in the SemCor corpus (`tagsense_cnt`, so rare words and rare
senses are left out), their direct hypernyms when narrow (60 hyponyms at
most: `day` and `date` share one, `act` and `thing` share nothing), similar
adjectives and derived forms. A sense no two stems share is dropped, and the
numbers are renumbered densely. See WORDNET-LICENSE.
"""

import collections
import sys

import snowballstemmer

MAX_HYPONYMS = 60
SENSES = 3
FILES = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def main(root):
    stem = snowballstemmer.stemmer("english").stemWord
    synsets = {}
    for name, pos in FILES.items():
        with open(f"{root}/data.{name}", encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                p = line.split(" | ")[0].split()
                count = int(p[3], 16)
                words = [p[4 + 2 * i].lower() for i in range(count)]
                k = 4 + 2 * count
                ptrs = []
                for i in range(int(p[k])):
                    sym, off, ps, src = p[k + 1 + 4 * i : k + 5 + 4 * i]
                    ptrs.append((sym, (off, "a" if ps == "s" else ps), src))
                synsets[(p[0], pos)] = (words, ptrs)
    hyponyms = collections.Counter()
    for _, ptrs in synsets.values():
        for sym, target, _ in ptrs:
            if sym in ("@", "@i"):
                hyponyms[target] += 1
    keys = collections.defaultdict(set)
    for name, pos in FILES.items():
        with open(f"{root}/index.{name}", encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                p = line.split()
                lemma, count, ptr_count = p[0], int(p[2]), int(p[3])
                tagged = int(p[5 + ptr_count])
                if tagged < 1 or not lemma.isalpha():
                    continue
                senses = keys[stem(lemma)]
                for off in p[-count:][: min(SENSES, tagged)]:
                    key = (off, pos)
                    senses.add(key)
                    words, ptrs = synsets[key]
                    for sym, target, src in ptrs:
                        if sym in ("@", "@i"):
                            if hyponyms[target] <= MAX_HYPONYMS:
                                senses.add(target)
                        elif sym == "&":
                            senses.add(target)
                        elif sym == "+":
                            # A derived form of this very word, not of a synonym.
                            i = int(src[:2], 16)
                            if i == 0 or (i <= len(words) and words[i - 1] == lemma):
                                senses.add(target)
    used = collections.Counter(s for senses in keys.values() for s in senses)
    ids = {}
    out = []
    for k in sorted(keys):
        shared = sorted(s for s in keys[k] if used[s] >= 2)
        if not shared or len(k) < 3:
            continue
        nums = sorted(ids.setdefault(s, len(ids)) for s in shared)
        out.append(k + " " + " ".join(map(str, nums)))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
