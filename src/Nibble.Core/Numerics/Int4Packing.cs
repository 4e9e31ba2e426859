namespace Nibble.Numerics;

/// <summary>
/// The three int4 layouts of the W4A8 path (spec §1.2, §2.4), for signed values q in [−8, 7]:
/// <list type="bullet">
/// <item>compressed-tensors <c>uint4b8</c> (checkpoint <c>weight_packed</c>, int32 [N, K/8]): nibble = q + 8, dense
/// little-endian along K, word w of a row holds k = 8w..8w+7 with k = 8w in bits 0..3.</item>
/// <item>signed two's-complement nibbles, 2 per byte, element i in bits 4·(i % 2) of byte i / 2 (CUTLASS int4b_t).</item>
/// <item>CUTLASS "unified" sign-magnitude codes (<c>unified_encode_int4b</c>): +v (1..7) is stored as 8 − v with
/// bit 3 clear, so +v and −v share the 3-bit index 8 − v; 0 and negatives keep their two's-complement nibble.</item>
/// </list>
/// </summary>
public static class Int4Packing
{
    public const int MinValue = -8, MaxValue = 7;

    /// <summary>Packs q [n, k] (row-major) into uint4b8 int32 words [n, k/8]; k must be a multiple of 8.</summary>
    public static int[] PackUint4b8(ReadOnlySpan<sbyte> q, int n, int k)
    {
        var packed = new int[checked(n * (k / 8))];
        PackUint4b8(q, n, k, packed);
        return packed;
    }

    public static void PackUint4b8(ReadOnlySpan<sbyte> q, int n, int k, Span<int> packedNK8)
    {
        CheckShape(n, k, q.Length, nameof(q));
        if (packedNK8.Length < n * (k / 8)) throw new ArgumentException("Destination is shorter than n·k/8 words.", nameof(packedNK8));
        int words = n * (k / 8);
        for (int w = 0; w < words; w++)
        {
            uint word = 0;
            for (int j = 0; j < 8; j++)
            {
                int v = q[8 * w + j];
                CheckValue(v);
                word |= (uint)(v + 8) << (4 * j);
            }
            packedNK8[w] = (int)word;
        }
    }

    /// <summary>Unpacks uint4b8 int32 words [n, k/8] into q [n, k].</summary>
    public static sbyte[] UnpackUint4b8(ReadOnlySpan<int> packedNK8, int n, int k)
    {
        var q = new sbyte[checked(n * k)];
        UnpackUint4b8(packedNK8, n, k, q);
        return q;
    }

    public static void UnpackUint4b8(ReadOnlySpan<int> packedNK8, int n, int k, Span<sbyte> q)
    {
        if (n < 0 || k < 0 || k % 8 != 0)
            throw new NibbleException($"An int4 weight of shape [{n}, {k}] cannot be packed 8 per int32 word along K; K must be a multiple of 8.");
        int words = n * (k / 8);
        if (packedNK8.Length != words)
            throw new NibbleException($"A packed int4 weight has {packedNK8.Length} int32 words but shape [{n}, {k}] needs {words}; check weight_shape against weight_packed.");
        if (q.Length < n * k) throw new ArgumentException("Destination is shorter than n·k.", nameof(q));
        for (int w = 0; w < words; w++)
        {
            uint word = (uint)packedNK8[w];
            for (int j = 0; j < 8; j++) q[8 * w + j] = (sbyte)((int)((word >> (4 * j)) & 0xF) - 8);
        }
    }

    /// <summary>uint4b8 word → two's-complement nibbles (vLLM's in-place conversion: (v − 8) &amp; 0xF flips bit 3).</summary>
    public static uint Uint4b8ToSignedWord(uint word) => word ^ 0x88888888u;

    /// <summary>Packs signed values two per byte (element i in bits 4·(i % 2) of byte i / 2); an odd tail leaves the high nibble 0.</summary>
    public static byte[] PackSigned(ReadOnlySpan<sbyte> q)
    {
        var packed = new byte[(q.Length + 1) / 2];
        for (int i = 0; i < q.Length; i++)
        {
            CheckValue(q[i]);
            packed[i >> 1] |= (byte)((q[i] & 0xF) << (4 * (i & 1)));
        }
        return packed;
    }

    public static sbyte[] UnpackSigned(ReadOnlySpan<byte> packed, int count)
    {
        if (count < 0 || (count + 1) / 2 > packed.Length)
            throw new ArgumentException($"{packed.Length} bytes hold at most {packed.Length * 2} int4 values, not {count}.", nameof(count));
        var q = new sbyte[count];
        for (int i = 0; i < count; i++) q[i] = SignedNibbleValue((packed[i >> 1] >> (4 * (i & 1))) & 0xF);
        return q;
    }

    /// <summary>Value of a two's-complement nibble (0..15 → −8..7).</summary>
    public static sbyte SignedNibbleValue(int nibble) => (sbyte)(((nibble & 0xF) ^ 8) - 8);

    /// <summary>Unified code (0..15) of a signed value.</summary>
    public static byte UnifiedEncode(int q)
    {
        CheckValue(q);
        return (byte)(q > 0 ? 8 - q : q & 0xF);
    }

    /// <summary>Signed value of a unified code: bit 3 set → index − 8; bit 3 clear → 8 − index, or 0 for index 0.</summary>
    public static sbyte UnifiedDecode(int code)
    {
        int index = code & 7;
        if ((code & 8) != 0) return (sbyte)(index - 8);
        return (sbyte)(index == 0 ? 0 : 8 - index);
    }

    /// <summary>Maps a two's-complement nibble to its unified code (1..7 → 8 − v, everything else unchanged).</summary>
    public static int UnifiedEncodeNibble(int nibble)
    {
        nibble &= 0xF;
        return nibble is >= 1 and <= 7 ? 8 - nibble : nibble;
    }

    /// <summary>Re-encodes packed two's-complement nibbles (any packing with nibble-aligned fields) as unified codes.</summary>
    public static void UnifiedEncodePacked(ReadOnlySpan<byte> signedPacked, Span<byte> unifiedPacked)
    {
        if (unifiedPacked.Length < signedPacked.Length) throw new ArgumentException("Destination is shorter than the source.", nameof(unifiedPacked));
        for (int i = 0; i < signedPacked.Length; i++)
        {
            int b = signedPacked[i];
            unifiedPacked[i] = (byte)(UnifiedEncodeNibble(b & 0xF) | (UnifiedEncodeNibble(b >> 4) << 4));
        }
    }

    /// <summary>Re-encodes a 32-bit word of 8 two's-complement nibbles as unified codes.</summary>
    public static uint UnifiedEncodeWord(uint signedWord)
    {
        uint result = 0;
        for (int j = 0; j < 8; j++) result |= (uint)UnifiedEncodeNibble((int)(signedWord >> (4 * j))) << (4 * j);
        return result;
    }

    static void CheckShape(int n, int k, int length, string name)
    {
        if (n < 0 || k < 0 || k % 8 != 0)
            throw new NibbleException($"An int4 weight of shape [{n}, {k}] cannot be packed 8 per int32 word along K; K must be a multiple of 8.");
        if (length != n * k) throw new ArgumentException($"Expected {n}·{k} = {n * k} values, got {length}.", name);
    }

    static void CheckValue(int v)
    {
        if (v is < MinValue or > MaxValue) throw new ArgumentOutOfRangeException(nameof(v), v, "int4 values lie in [-8, 7].");
    }
}
