// Unit checks that need no bundle: SHA-256 test vectors and .npy round trip.
#include <cstdio>
#include <cstring>
#include <string>

#include "npy.h"
#include "sha256.h"

using namespace stretch;

static int failures = 0;
static void Check(bool ok, const char* what) {
  if (!ok) { std::fprintf(stderr, "FAIL: %s\n", what); ++failures; }
}

int main() {
  Check(Sha256Hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 empty");
  Check(Sha256Hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 abc");
  const char* two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  Check(Sha256Hex(two, std::strlen(two)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "sha256 448 bits");
  std::string mil(1000000, 'a');
  Check(Sha256Hex(mil.data(), mil.size()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "sha256 million a");
  NpyArray a;
  a.dtype = "float32";
  a.shape = {2, 3};
  a.data.resize(24);
  for (int i = 0; i < 6; ++i) { float v = i * 0.5f; std::memcpy(a.data.data() + 4 * i, &v, 4); }
  const char* path = "selftest_tmp.npy";
  WriteNpy(path, a);
  NpyArray b = ReadNpy(path);
  std::remove(path);
  Check(b.dtype == a.dtype && b.shape == a.shape && b.data == a.data, "npy round trip");
  if (failures == 0) std::printf("selftest: all checks passed\n");
  return failures ? 1 : 0;
}
