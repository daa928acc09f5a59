; Mine, broken on purpose: the loop's back edge arrives with one value more on the stack each time.
; expect: Inconsistent stack height
.class public UnevenStack
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 4
    .limit locals 1
Top:
    iconst_1
    iconst_0
    ifeq Top
    return
.end method
