; Broken on purpose: iadd needs two ints, but fconst_1 pushed a float.
; expect: Expecting to find integer on stack
.class public BadFloatAdd
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 2
    .limit locals 1
    fconst_1
    iconst_1
    iadd
    pop
    return
.end method
