; Mine, broken on purpose: three values pushed where .limit stack allows two.
; expect: Stack size too large
.class public StackTooDeep
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 2
    .limit locals 1
    iconst_1
    iconst_2
    iconst_3
    pop
    pop
    pop
    return
.end method
